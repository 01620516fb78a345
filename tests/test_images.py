"""Image data: the three sources, RGB conversion, augmentation, unreadable images, multi-label labels.

Real images throughout: scikit-learn digits written as PNG files, Debian Fashion-MNIST.
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import corrupt_image_csv, run_cli
from PIL import Image
from test_bad_input import assert_one_line_error

from hf_finetune.data.images import IMAGE_REF_COLUMN, SKIPPED_IMAGES_FILE, ImageTransform, to_rgb
from hf_finetune.recipes import config_from_dict
from hf_finetune.tasks import TASKS


def image_task(vit_init_dir, **values):
    cfg = config_from_dict({"task": "image_classification", "model_name_or_path": str(vit_init_dir), **values})
    return TASKS.get("image_classification")(cfg)


def write_csv(folder, rows, name="images.csv"):
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_image_folder_gives_labels_from_folder_names(digit_folder, vit_init_dir):
    task = image_task(vit_init_dir, dataset_name=str(digit_folder))
    data = task.load_data()
    assert data.label_names == ["0", "1", "7"]
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 90
    # stratified, seeded validation split: every class in both parts
    assert set(data.splits["validation"]["label"]) == {0, 1, 2}
    assert data.splits["train"][0][IMAGE_REF_COLUMN].endswith(".png")
    assert task.load_data().splits["validation"][IMAGE_REF_COLUMN] == data.splits["validation"][IMAGE_REF_COLUMN]


def test_csv_of_relative_paths_with_custom_columns(digit_folder, vit_init_dir, tmp_path, monkeypatch):
    rows = [{"file": str(p.relative_to(digit_folder)), "category": p.parent.name} for p in digit_folder.rglob("*.png")]
    csv_path = write_csv(digit_folder, rows, "listing.csv")
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the CSV, not to the working directory
    task = image_task(vit_init_dir, train_file=str(csv_path), image_column="file", label_column="category")
    data = task.load_data()
    assert data.label_names == ["0", "1", "7"]
    example = data.splits["train"][0]
    assert isinstance(example["file"], Image.Image) and example["file"].size == (8, 8)
    encoded = task.encode(data, task.load_processor())
    batch = encoded["validation"][:4]
    assert tuple(batch["pixel_values"].shape) == (4, 3, 28, 28)
    assert batch["labels"].tolist() == data.splits["validation"]["category"][:4]


def test_image_feature_dataset_with_custom_columns(digits_data, vit_init_dir, tmp_path):
    renamed = digits_data.rename_columns({"image": "picture", "label": "digit"})
    renamed.save_to_disk(str(tmp_path / "saved"))
    task = image_task(vit_init_dir, dataset_name=str(tmp_path / "saved"), image_column="picture", label_column="digit")
    data = task.load_data()
    assert data.label_names == [str(d) for d in range(10)]
    assert len(data.splits["test"]) == len(digits_data["test"])
    assert data.splits["test"][3][IMAGE_REF_COLUMN] == "test[3]"


def test_grayscale_and_rgba_become_rgb(digits_data, vit_init_dir):
    gray = digits_data["train"][0]["image"]
    assert gray.mode == "L" and to_rgb(gray).mode == "RGB"
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    rgb = to_rgb(rgba)
    assert rgb.mode == "RGB" and rgb.getpixel((1, 1)) == (255, 255, 255) and rgb.getpixel((0, 0)) == (0, 0, 255)
    task = image_task(vit_init_dir, dataset_name="packaged:digits")
    processor = task.load_processor()
    transform = ImageTransform(processor, "image", "label", 2, False)
    for image in (gray, rgba, gray.convert("P"), gray.convert("CMYK")):
        assert tuple(transform({"image": [image], "label": [1]})["pixel_values"].shape) == (1, 3, 28, 28)


def test_images_of_mixed_modes_are_not_an_error(digits_data, vit_init_dir, tmp_path):
    """One folder mixing grayscale, bilevel, 16-bit, palette, RGB, RGBA, LA and CMYK files loads, encodes
    (both transforms) and runs through the model: every image becomes RGB, so mixed modes are fine input."""
    import torch
    from transformers import AutoModelForImageClassification

    modes = {"L": "png", "1": "png", "I;16": "png", "P": "png", "RGB": "png", "RGBA": "png", "LA": "png", "CMYK": "jpg"}
    for label in (0, 1):
        rows = digits_data["train"].filter(lambda r, label=label: r["label"] == label).select(range(len(modes)))
        (tmp_path / str(label)).mkdir()
        for row, (mode, suffix) in zip(rows, modes.items(), strict=True):
            row["image"].convert(mode).save(tmp_path / str(label) / f"{mode.replace(';', '')}.{suffix}")
    task = image_task(vit_init_dir, dataset_name=str(tmp_path), augmentation="crop")
    data = task.load_data()
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 2 * len(modes)
    processor = task.load_processor()
    encoded = task.encode(data, processor)
    # training images are staged (uint8 at the input size) and augmented as a batch, as the Trainer does
    train = task.batch_transform(processor, data)(encoded["train"][:])
    validation = encoded["validation"][:]
    assert tuple(train["pixel_values"].shape)[1:] == tuple(validation["pixel_values"].shape)[1:] == (3, 28, 28)
    model = AutoModelForImageClassification.from_pretrained(vit_init_dir, num_labels=2, ignore_mismatched_sizes=True)
    with torch.no_grad():
        loss = model(pixel_values=train["pixel_values"], labels=train["labels"]).loss
    assert torch.isfinite(loss)


def test_augmentation_is_random_in_training_and_deterministic_in_evaluation(digits_data, vit_init_dir):
    task = image_task(vit_init_dir, dataset_name="packaged:digits", augmentation="trivial")
    processor = task.load_processor()
    rows = digits_data["train"].select(range(8))
    batch = {"image": rows["image"], "label": rows["label"]}
    train = ImageTransform(processor, "image", "label", 10, False, augment="trivial", min_scale=0.5)
    evaluation = ImageTransform(processor, "image", "label", 10, False)
    first, second = train(batch)["pixel_values"], train(batch)["pixel_values"]
    assert first.shape == second.shape == (8, 3, 28, 28)
    assert not np.allclose(first.numpy(), second.numpy())
    one, two = evaluation(batch)["pixel_values"], evaluation(batch)["pixel_values"]
    assert np.array_equal(one.numpy(), two.numpy())
    expected = processor(images=[to_rgb(i) for i in rows["image"]], return_tensors="pt")["pixel_values"]
    assert np.array_equal(one.numpy(), expected.numpy())
    # the training pipeline normalises with the processor's statistics: same value range
    assert first.min() >= -1.01 and first.max() <= 1.01


# Unreadable images (zero bytes, truncated, damaged, not an image, missing) as an error naming them:
# cases of the bad-input battery, `tests/test_bad_input.py`.


def test_unreadable_images_skipped_on_request(digit_folder, vit_init_dir, tmp_path):
    csv_path = corrupt_image_csv(digit_folder, tmp_path)
    task = image_task(
        vit_init_dir, train_file=str(csv_path), image_column="file", label_column="category", skip_bad_images=True
    )
    data = task.load_data()
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 90
    listing = data.extra_outputs[SKIPPED_IMAGES_FILE].splitlines()
    assert listing[0] == "split\timage\treason" and len(listing) == 4
    assert {line.split("\t")[1].rsplit("/", 1)[-1] for line in listing[1:]} == {
        "truncated.png",
        "notes.png",
        "missing.png",
    }


def test_multi_label_lists_and_separated_strings(digit_folder, vit_init_dir, tmp_path):
    files = sorted(digit_folder.rglob("*.png"))
    tags = {"0": "round", "1": "straight", "7": "straight,corner"}
    rows = [{"file": str(p), "tags": tags[p.parent.name]} for p in files]
    task = image_task(
        vit_init_dir, train_file=str(write_csv(tmp_path, rows)), image_column="file", label_column="tags",
        multi_label=True,
    )  # fmt: skip
    data = task.load_data()
    assert data.label_names == ["corner", "round", "straight"]
    batch = task.encode(data, task.load_processor())["validation"][:6]
    assert batch["labels"].dtype.is_floating_point and tuple(batch["labels"].shape) == (6, 3)
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps({"file": r["file"], "tags": r["tags"].split(",")}) + "\n" for r in rows))
    same = image_task(vit_init_dir, train_file=str(jsonl), image_column="file", label_column="tags", multi_label=True)
    assert same.load_data().label_names == data.label_names
    single = image_task(vit_init_dir, train_file=str(jsonl), image_column="file", label_column="tags")
    with pytest.raises(Exception, match="--multi_label true"):
        single.load_data()


def test_new_head_when_the_checkpoint_head_predicts_other_classes(vit_init_dir):
    from safetensors.torch import load_file
    from transformers import AutoModelForImageClassification

    from hf_finetune.modeling.loading import load_classifier
    from hf_finetune.settings.arguments import ModelArguments

    saved = load_file(str(vit_init_dir / "model.safetensors"))["classifier.weight"]
    source = list(json.loads((vit_init_dir / "config.json").read_text())["id2label"].values())
    args = ModelArguments(model_name_or_path=str(vit_init_dir))
    same, new_same = load_classifier(AutoModelForImageClassification, args, source)
    assert np.array_equal(same.classifier.weight.detach().numpy(), saved.numpy()) and not new_same
    targets = ["Trouser", "Dress", "Sandal", "Sneaker", "Ankle boot"]  # same count, other classes
    other, new_other = load_classifier(AutoModelForImageClassification, args, targets)
    assert not np.allclose(other.classifier.weight.detach().numpy(), saved.numpy())
    assert "classifier.weight" in new_other and other.config.id2label[0] == "Trouser"


@pytest.mark.parametrize("recipe", ["cifar10", "beans", "food101", "fashion_mnist_target", "vit_fashion_source"])
def test_image_recipes_resolve(recipe):
    from hf_finetune.recipes import parse_config

    cfg = parse_config(["--config", recipe])
    assert cfg.run.task == "image_classification"
    assert cfg.model.ignore_mismatched_sizes or recipe == "vit_fashion_source"
    task = TASKS.get("image_classification")(cfg)
    assert cfg.training.train_sampling_strategy == "random" and cfg.training.remove_unused_columns is False
    assert task.input_columns() == [("image", cfg.data.image_column)]


def test_pretrain_reuses_a_finished_folder(tmp_path):
    from hf_finetune.outputs import mark_complete
    from hf_finetune.training.pretrain import pretrain

    finished = tmp_path / "pretrained"
    finished.mkdir()
    mark_complete(finished, {})
    init = tmp_path / "init"
    assert pretrain(["--output_dir", str(finished), "--model_name_or_path", str(init)]) == finished
    assert not init.exists()  # nothing written, nothing trained


def test_multilabel_scores_by_hand():
    from hf_finetune.evaluation.metrics import majority_label_set_baseline, multilabel_scores

    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1]])
    pred = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 1]])
    scores = multilabel_scores(gold, pred)
    assert scores["accuracy"] == 0.5  # rows 0 and 3 exactly right
    # pooled: TP 5, FP 1, FN 1 -> micro F1 5/6; per label F1: 0.8, 1.0, 0.8 -> macro 13/15
    assert scores["micro_f1"] == pytest.approx(5 / 6) and scores["macro_f1"] == pytest.approx(13 / 15)
    assert majority_label_set_baseline([[0, 2], [0, 2], [1]], gold) == 0.5


def test_text_commands_refuse_an_image_model_in_one_line(vit_init_dir, tmp_path, capsys):
    code, _, stderr = run_cli(["predict", "--model", str(vit_init_dir), "--text", "a shoe"], capsys)
    assert code == 2
    assert_one_line_error(stderr, r"is an image model: pass --input with an image, an image folder")


def test_missing_pretrained_vit_says_how_to_make_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no outputs/pretrained here
    code, _, stderr = run_cli(["train", "--config", "fashion_mnist_target"], capsys)
    assert code == 2
    assert_one_line_error(stderr, r"run `hf-finetune pretrain` first")
    assert not (tmp_path / "outputs").exists()
