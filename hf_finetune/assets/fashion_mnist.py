"""Fashion-MNIST (Debian `dataset-fashion-mnist`) as labelled image data sets: classes, splits, attributes."""

from __future__ import annotations

from pathlib import Path

from hf_finetune.errors import UserError

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


# Zero-shot by attributes (`hf_finetune.analysis.zero_shot`): these target classes are held out of training
# entirely. Each is a combination of attributes that seen classes teach: Dress = the tops' upper_body
# + Trouser's covers_legs; Sneaker = footwear with neither Sandal's open_toe nor Ankle boot's
# covers_ankle. A third target class cannot be held out too: without Trouser covers_legs has no
# positive example, without Sandal or Ankle boot open_toe or covers_ankle has none.
FASHION_MNIST_UNSEEN_CLASSES = (3, 7)


FASHION_MNIST_SEEN_CLASSES = tuple(
    c for c in range(len(FASHION_MNIST_CLASSES)) if c not in FASHION_MNIST_UNSEEN_CLASSES
)


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


def read_idx(path: Path):
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


def image_dataset(images, labels, names: list[str]):
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
    return DatasetDict({split: image_dataset(images, labels, names) for split, (images, labels) in arrays.items()})


def fashion_mnist_arrays(classes: tuple[int, ...] | None = None):
    """(class names, {split: (uint8 images (n, 28, 28), labels renumbered 0..k-1)}) of `fashion_mnist`."""
    import numpy as np

    keep = tuple(range(len(FASHION_MNIST_CLASSES))) if classes is None else tuple(classes)
    names = [FASHION_MNIST_CLASSES[c] for c in keep]
    remap = np.full(len(FASHION_MNIST_CLASSES), -1)
    remap[list(keep)] = np.arange(len(keep))
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = remap[read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")]
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
            split: image_dataset(blend_with_photos(images, seed=FASHION_MNIST_M_SEED + offset), labels, names)
            for offset, (split, (images, labels)) in enumerate(arrays.items())
        }
    )


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
