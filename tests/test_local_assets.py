"""The one loader of the real fortunes topic set: deterministic, filtered, no leakage."""

from collections import Counter

from hf_finetune.assets.fortunes import FORTUNE_MAX_CHARS, FORTUNE_MIN_CHARS, FORTUNE_TOPICS, fortunes_topics


def test_fortunes_topics_shape_and_filter(fortunes):
    assert set(fortunes) == {"train", "test"}
    assert fortunes["train"].features["label"].names == list(FORTUNE_TOPICS)
    total = len(fortunes["train"]) + len(fortunes["test"])
    assert 2500 < total < 3000  # ~2,760 entries of 20-600 characters in the four categories
    for text in fortunes["train"]["text"][:500]:
        assert FORTUNE_MIN_CHARS <= len(text) <= FORTUNE_MAX_CHARS
        assert "\n" not in text and "  " not in text
    assert len(Counter(fortunes["test"]["label"])) == 4


def test_fortunes_split_is_fixed_and_disjoint(fortunes):
    again = fortunes_topics()
    assert again["test"]["text"] == fortunes["test"]["text"]
    assert not set(fortunes["train"]["text"]) & set(fortunes["test"]["text"])


def test_fashion_mnist_loader_and_source_target_subsets():
    import numpy as np

    from hf_finetune.assets.fashion_mnist import (
        ATTRIBUTE_NAMES,
        FASHION_MNIST_ATTRIBUTES,
        FASHION_MNIST_CLASSES,
        FASHION_MNIST_SOURCE_CLASSES,
        FASHION_MNIST_TARGET_CLASSES,
        fashion_mnist,
    )

    data = fashion_mnist()
    assert {k: len(v) for k, v in data.items()} == {"train": 60000, "test": 10000}
    assert data["train"].features["label"].names[0] == "T-shirt/top" and len(FASHION_MNIST_CLASSES) == 10
    image = data["test"][0]["image"]
    assert image.size == (28, 28) and image.mode == "L" and np.asarray(image).max() > 100
    assert Counter(data["test"]["label"]) == dict.fromkeys(range(10), 1000)
    assert not set(FASHION_MNIST_SOURCE_CLASSES) & set(FASHION_MNIST_TARGET_CLASSES)
    source = fashion_mnist(FASHION_MNIST_SOURCE_CLASSES)
    assert source["train"].features["label"].names == ["T-shirt/top", "Pullover", "Coat", "Shirt", "Bag"]
    assert len(source["train"]) == 30000 and set(source["train"]["label"]) == set(range(5))
    # the subset holds exactly the source-class images of the train file, in file order
    rows = [i for i, label in enumerate(data["train"]["label"]) if label in FASHION_MNIST_SOURCE_CLASSES]
    assert np.array_equal(np.asarray(source["train"][5]["image"]), np.asarray(data["train"][rows[5]]["image"]))
    assert set(FASHION_MNIST_ATTRIBUTES) == set(FASHION_MNIST_CLASSES)
    assert {a for attrs in FASHION_MNIST_ATTRIBUTES.values() for a in attrs} == set(ATTRIBUTE_NAMES)


def test_digits_loader_is_fixed_and_stratified():
    from hf_finetune.assets.digits import digits

    data = digits()
    assert len(data["train"]) + len(data["test"]) == 1797 and len(data["test"]) == 360
    assert data["train"].features["label"].names == [str(d) for d in range(10)]
    assert data["train"][0]["image"].size == (8, 8)
    assert min(Counter(data["test"]["label"]).values()) >= 34  # ~36 per digit in test
    assert digits()["test"]["label"] == data["test"]["label"]


def test_pretrained_vit_location_is_the_one_the_pretraining_recipe_writes():
    from pathlib import Path

    from hf_finetune.assets.models import PRETRAINED_VIT_DIR
    from hf_finetune.recipes import load_recipe, resolve_recipe_path

    assert Path(load_recipe(resolve_recipe_path("vit_fashion_source"))["output_dir"]) == PRETRAINED_VIT_DIR
