"""scikit-learn's 8x8 digits as an image data set: a second, different visual domain."""

from __future__ import annotations

from hf_finetune.assets.fashion_mnist import image_dataset

DIGITS_SEED = 0


DIGITS_TEST_FRACTION = 0.2


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
            "train": image_dataset(images[train_idx], loaded.target[train_idx], names),
            "test": image_dataset(images[test_idx], loaded.target[test_idx], names),
        }
    )
