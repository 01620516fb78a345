"""The `packaged:` data sets by name: one table, one loader."""

from __future__ import annotations

import functools
from collections.abc import Callable

from hf_finetune.assets.digits import digits
from hf_finetune.assets.fashion_mnist import (
    fashion_mnist,
    fashion_mnist_attributes,
    fashion_mnist_attributes_seen,
    fashion_mnist_categories,
    fashion_mnist_source,
    fashion_mnist_target,
    fashion_mnist_target_m,
)
from hf_finetune.assets.fortunes import (
    fortunes_ner,
    fortunes_readability,
    fortunes_topic_sets,
    fortunes_topics,
    fortunes_topics_by_length,
    fortunes_topics_readability,
)
from hf_finetune.errors import UserError
from hf_finetune.settings.packaged import PACKAGED_PREFIX

PACKAGED_DATASETS: dict[str, Callable[[], object]] = {
    "fortunes-topics": fortunes_topics,
    "fortunes-topic-sets": fortunes_topic_sets,
    "fortunes-readability": fortunes_readability,
    "fortunes-ner": fortunes_ner,
    "fashion-mnist": fashion_mnist,
    "fashion-mnist-source": fashion_mnist_source,
    "fashion-mnist-target": fashion_mnist_target,
    "fashion-mnist-attributes": fashion_mnist_attributes,
    "digits": digits,
    "fashion-mnist-attributes-seen": fashion_mnist_attributes_seen,
    "fashion-mnist-target-m": fashion_mnist_target_m,
    "fortunes-topics-short": functools.partial(fortunes_topics_by_length, long=False),
    "fortunes-topics-long": functools.partial(fortunes_topics_by_length, long=True),
    "fashion-mnist-categories": fashion_mnist_categories,
    "fortunes-topics-readability": fortunes_topics_readability,
}


def load_packaged_dataset(name: str):
    key = name[len(PACKAGED_PREFIX) :]
    if key not in PACKAGED_DATASETS:
        raise UserError(f"unknown packaged data set '{key}'; known: {', '.join(sorted(PACKAGED_DATASETS))}")
    return PACKAGED_DATASETS[key]()
