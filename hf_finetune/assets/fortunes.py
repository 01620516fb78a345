"""Debian's `fortunes` as labelled text: the topic set and the other NLP tasks built from the same entries.

`packaged:fortunes-topics` (4 topics, fixed test split), `packaged:fortunes-topic-sets` (multi-label: one or
two entries joined, labelled with their topics), `packaged:fortunes-readability` (regression: the
Flesch-Kincaid grade of each entry), `packaged:fortunes-ner` (entities found by the rules in
`fortunes_ner.py`), and the short/long and readability-band variants. One loader and one filter (entries of
20-600 characters, whitespace collapsed, fixed seed), so every number across the project is comparable.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from hf_finetune.assets.fortunes_ner import TAG_NAMES, tag_text
from hf_finetune.errors import UserError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Four topics with enough entries each (~600-1,000) and little overlap in vocabulary.
FORTUNE_TOPICS = ("computers", "politics", "science", "songs-poems")
# Entries shorter than 20 characters are mostly one-liners with no topic signal; entries
# longer than 600 are ASCII art or song lyrics that would be truncated anyway.
FORTUNE_MIN_CHARS, FORTUNE_MAX_CHARS = 20, 600
# Fixed so that every demo, test and benchmark sees the same held-out test split.
FORTUNES_SEED = 0
FORTUNES_TEST_FRACTION = 0.2


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


# --- Multi-label: topic sets ---
# Fortunes carry one category each (only 110 of ~14,000 entries sit in two files), so a multi-label
# example is one or two real entries joined into one text, labelled with the set of their topics.
# Of the short entries, a quarter stay single, a quarter are joined in pairs of the same topic (one
# label, so text length does not give the label count away), half in pairs of different topics.
# Entries in pairs are at most 250 characters, so two fit in 128 tokens.
TOPIC_SET_PART_MAX_CHARS = 250


def fortunes_topic_sets(seed: int = FORTUNES_SEED):
    """Multi-label topics (`text`, `labels`: a list of topics) built from the fixed topic splits.

    Each split is built from the same split of `fortunes_topics`, so no entry of the test split
    appears in training; each entry is used at most once.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    topics = fortunes_topics(seed=seed)
    names = topics["train"].features["label"].names
    rng = random.Random(seed)
    out = {}
    for split, dataset in topics.items():
        rows = list(zip(dataset["text"], dataset["label"], strict=True))
        rng.shuffle(rows)
        short = [r for r in rows if len(r[0]) <= TOPIC_SET_PART_MAX_CHARS]
        long = [r for r in rows if len(r[0]) > TOPIC_SET_PART_MAX_CHARS]
        # Long entries stay single (two would not fit in 128 tokens).
        quarter = len(short) // 4
        singles, same_pool, cross_pool = short[:quarter] + long, short[quarter : 2 * quarter], short[2 * quarter :]
        examples = [(text, [label]) for text, label in singles]
        by_topic: dict[int, list] = {}
        for row in same_pool:
            by_topic.setdefault(row[1], []).append(row)
        for label, group in sorted(by_topic.items()):
            for a, b in zip(group[0::2], group[1::2], strict=False):
                examples.append((f"{a[0]} {b[0]}", [label]))
        pending = list(cross_pool)
        while len(pending) >= 2:
            first = pending.pop()
            partner = next((k for k in range(len(pending) - 1, -1, -1) if pending[k][1] != first[1]), None)
            if partner is None:
                break
            second = pending.pop(partner)
            examples.append((f"{first[0]} {second[0]}", sorted({first[1], second[1]})))
        rng.shuffle(examples)
        features = Features({"text": Value("string"), "labels": Sequence(ClassLabel(names=list(names)))})
        out[split] = Dataset.from_dict(
            {"text": [e[0] for e in examples], "labels": [e[1] for e in examples]}, features=features
        )
    return DatasetDict(out)


# --- Regression: readability ---
# The target is the Flesch-Kincaid grade level of each topic entry: a standard readability formula
# (0.39 x words per sentence + 11.8 x syllables per word - 15.59), computed here from the text with
# a vowel-group syllable counter. It is a real, smooth property of real text, not a human judgement.
# Unpunctuated verse gives absurd grades (up to 268), so the target is clipped to 0-20 (school grade
# to post-graduate; ~5% of entries are clipped).
READABILITY_RANGE = (0.0, 20.0)
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def syllables(word: str) -> int:
    """Vowel groups, less a silent final `e` (`make` 1, `table` 2): the usual heuristic, no dictionary."""
    word = word.lower()
    n = len(re.findall(r"[aeiouy]+", word))
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    return max(n, 1)


def flesch_kincaid_grade(text: str) -> float:
    words = _WORD.findall(text)
    if not words:
        raise ValueError(f"no words in {text!r}")
    sentences = max(1, len(_SENTENCE_END.findall(text)))
    grade = 0.39 * len(words) / sentences + 11.8 * sum(map(syllables, words)) / len(words) - 15.59
    return min(max(grade, READABILITY_RANGE[0]), READABILITY_RANGE[1])


def fortunes_readability(seed: int = FORTUNES_SEED):
    """The topic entries (same fixed splits) with `label`: their clipped Flesch-Kincaid grade (float32)."""
    from datasets import DatasetDict, Features, Value

    topics = fortunes_topics(seed=seed)
    features = Features({"text": Value("string"), "label": Value("float32")})
    return DatasetDict(
        {
            split: dataset.map(
                lambda batch: {"label": [round(flesch_kincaid_grade(t), 3) for t in batch["text"]]},
                batched=True,
                remove_columns=["label"],
                features=features,
            )
            for split, dataset in topics.items()
        }
    )


# --- Token classification: entities found by rules ---
# Every category but ascii-art (pictures) and translate-me (not English).
NER_EXCLUDED_CATEGORIES = ("ascii-art", "translate-me")


def fortune_categories() -> list[str]:
    if not FORTUNES_DIR.is_dir():
        raise UserError(f"fortune folder {FORTUNES_DIR} not found: install the data with `apt-get install fortunes`")
    return sorted(
        p.name for p in FORTUNES_DIR.iterdir() if p.is_file() and not p.suffix and p.name not in NER_EXCLUDED_CATEGORIES
    )


def fortunes_ner(seed: int = FORTUNES_SEED):
    """Real fortunes (all English categories, 20-600 characters, deduplicated) as CoNLL-style `tokens` and
    `ner_tags` (BIO tags of PER, ORG, LOC, DATE found by `ner_rules`), with a fixed 20% test split.

    About half the entries hold an entity; most entities are people named in attributions
    (`-- Mark Twain`). Entries without entities stay in, as sentences without entities do in CoNLL.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    texts = sorted({text for category in fortune_categories() for text in read_fortunes(category)})
    rng = random.Random(seed)
    rng.shuffle(texts)
    n_test = round(len(texts) * FORTUNES_TEST_FRACTION)
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=list(TAG_NAMES)))})
    out = {}
    for split, split_texts in (("train", texts[n_test:]), ("test", texts[:n_test])):
        tagged = [tag_text(text) for text in split_texts]
        out[split] = Dataset.from_dict(
            {"tokens": [t for t, _ in tagged], "ner_tags": [[TAG_NAMES.index(tag) for tag in g] for _, g in tagged]},
            features=features,
        )
    return DatasetDict(out)


# Fortunes by writing style: the same four topics and fixed splits, cut by length at about the median
# (110 characters in train). Short entries are one-liners and quips; long ones are anecdotes, dialogues
# and verse: another vocabulary and sentence structure for the same topics (the text shift of `dann`).
FORTUNE_SHORT_MAX_CHARS = 100


def fortunes_topics_by_length(long: bool):
    """`fortunes-topics` entries of at most (`long=False`) or over (`long=True`) `FORTUNE_SHORT_MAX_CHARS`."""
    from datasets import DatasetDict

    def keep(example):
        return (len(example["text"]) > FORTUNE_SHORT_MAX_CHARS) == long

    return DatasetDict({split: dataset.filter(keep) for split, dataset in fortunes_topics().items()})


# Readability bands of the Flesch-Kincaid grade (US school grades): up to 6th grade, 7th to 10th, above.
READABILITY_BANDS = (("easy", 6.0), ("medium", 10.0), ("hard", float("inf")))


def fortunes_topics_readability(seed: int = FORTUNES_SEED):
    """The topic entries (same fixed splits) with a second label, `readability`: the band of their
    Flesch-Kincaid grade (`READABILITY_BANDS`), beside the topic `label`."""
    from datasets import ClassLabel, DatasetDict

    feature = ClassLabel(names=[name for name, _ in READABILITY_BANDS])

    def band(text: str) -> int:
        grade = flesch_kincaid_grade(text)
        return next(i for i, (_, upper) in enumerate(READABILITY_BANDS) if grade <= upper)

    return DatasetDict(
        {
            split: ds.add_column("readability", [band(t) for t in ds["text"]], feature=feature)
            for split, ds in fortunes_topics(seed=seed).items()
        }
    )
