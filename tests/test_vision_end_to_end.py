"""The locally pretrained ViT fine-tuned on real held-out images, then used as a user would.

One tiny pretraining per session (`pretrained_vit` in conftest: 3,000 Fashion-MNIST source
images), then fine-tuning on the target classes it never saw, multi-label attributes, and the
Hub recipes pointed at local data sets with the same columns.
"""

import json

import numpy as np
import pytest
from conftest import read_json, run_cli

pytestmark = pytest.mark.slow

TARGET = ["Trouser", "Dress", "Sandal", "Sneaker", "Ankle boot"]


@pytest.fixture(scope="session")
def target_run(tmp_path_factory, pretrained_vit):
    """Fine-tune the pretrained ViT on the held-out Fashion-MNIST classes through the CLI."""
    from hf_finetune.cli import main

    out = tmp_path_factory.mktemp("vision") / "target"
    argv = ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(pretrained_vit),
            "--max_train_samples", "600", "--max_eval_samples", "1000", "--num_train_epochs", "3",
            "--output_dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def test_pretraining_learned_the_source_classes(pretrained_vit):
    metrics = read_json(pretrained_vit / "metrics.json")
    assert metrics["label_names"] == ["T-shirt/top", "Pullover", "Coat", "Shirt", "Bag"]
    assert metrics["metrics"]["test"]["accuracy"] > metrics["majority_baseline"] + 0.2


def test_fine_tuned_vit_beats_majority_class_on_held_out_images(target_run):
    metrics = read_json(target_run / "metrics.json")
    assert metrics["label_names"] == TARGET
    assert metrics["data_sizes"]["train"] == 600 and metrics["data_sizes"]["test"] == 1000
    test = metrics["metrics"]["test"]
    assert test["accuracy"] > metrics["majority_baseline"] + 0.3, (test, metrics["majority_baseline"])


def test_output_folder_is_complete_and_says_image(target_run):
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "run_config.yaml", "metrics.json",
                 "confusion_matrix.png", "confusion_matrix.json", "misclassified.jsonl", "README.md",
                 "run_complete.json"):  # fmt: skip
        assert (target_run / name).is_file(), name
    assert not list(target_run.glob("*.bin"))
    config = read_json(target_run / "config.json")
    assert list(config["id2label"].values()) == TARGET
    card = (target_run / "README.md").read_text()
    assert "image=`image`" in card and 'classifier("path/to/image.jpg")' in card
    wrong = [json.loads(line) for line in (target_run / "misclassified.jsonl").read_text().splitlines()]
    assert wrong and all(w["image"].startswith("test[") and w["label"] != w["predicted"] for w in wrong)


def test_pipeline_loads_the_output_and_classifies_image_files(target_run, tmp_path):
    from transformers import pipeline

    from hf_finetune.assets.fashion_mnist import fashion_mnist_target

    test = fashion_mnist_target()["test"]
    paths, labels = [], []
    for i in range(40):
        paths.append(str(tmp_path / f"{i}.png"))
        test[i]["image"].save(paths[-1])
        labels.append(TARGET[test[i]["label"]])
    classifier = pipeline("image-classification", model=str(target_run))
    predictions = [out[0]["label"] for out in classifier(paths)]
    assert set(predictions) <= set(TARGET)
    assert np.mean([p == t for p, t in zip(predictions, labels, strict=True)]) > 0.5


def test_multi_label_attributes(tmp_path, pretrained_vit, capsys):
    """Fashion-MNIST attributes (clothing, upper_body, footwear, ...) as a real multi-label set."""
    out = tmp_path / "attributes"
    argv = ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(pretrained_vit),
            "--dataset_name", "packaged:fashion-mnist-attributes", "--label_column", "labels", "--multi_label", "true",
            "--max_train_samples", "800", "--max_eval_samples", "500", "--num_train_epochs", "2",
            "--output_dir", str(out)]  # fmt: skip
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and "micro_f1" in stdout
    metrics = read_json(out / "metrics.json")
    test = metrics["metrics"]["test"]
    assert {"micro_f1", "macro_f1", "accuracy"} <= set(test)
    assert test["micro_f1"] > 0.7 and test["accuracy"] > metrics["majority_baseline"] + 0.1, test
    assert read_json(out / "config.json")["problem_type"] == "multi_label_classification"
    cm = read_json(out / "confusion_matrix.json")
    assert set(cm["per_label"]) == set(metrics["label_names"]) and not (out / "confusion_matrix.png").exists()
    wrong = [json.loads(line) for line in (out / "misclassified.jsonl").read_text().splitlines()]
    assert all(set(w["labels"]) != set(w["predicted"]) for w in wrong)

    from transformers import pipeline

    from hf_finetune.assets.fashion_mnist import fashion_mnist_attributes

    image = fashion_mnist_attributes()["test"][0]["image"]  # an ankle boot: footwear only
    scores = {r["label"]: r["score"] for r in pipeline("image-classification", model=str(out))(image, top_k=None)}
    assert scores["footwear"] > 0.5 and sum(scores.values()) > 1.0  # independent sigmoids, not a softmax


@pytest.mark.parametrize(
    ("recipe", "image_column", "label_column"),
    [("cifar10", "img", "label"), ("beans", "image", "labels"), ("food101", "image", "label")],
)
def test_hub_recipe_trains_on_a_local_dataset_with_the_same_columns(
    recipe, image_column, label_column, digits_data, vit_init_dir, tmp_path
):
    """Offline stand-in for the Hub data set: real digit images under the recipe's column names."""
    import hf_finetune
    from hf_finetune.recipes import load_recipe, resolve_recipe_path

    values = load_recipe(resolve_recipe_path(recipe))
    assert (values["image_column"], values["label_column"]) == (image_column, label_column)
    local = tmp_path / recipe
    digits_data.rename_columns({"image": image_column, "label": label_column}).save_to_disk(str(local))
    result = hf_finetune.train(
        recipe, model_name_or_path=str(vit_init_dir), dataset_name=str(local), max_train_samples=256,
        max_eval_samples=128, num_train_epochs=1, output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    assert (result.output_dir / "run_complete.json").is_file()
    assert result.metrics["test"]["accuracy"] >= 0  # it ran end to end; 256 images, 1 epoch, random init
    assert read_json(result.output_dir / "config.json")["id2label"]["9"] == "9"


def test_final_model_is_the_best_checkpoint(target_run):
    """ViT checkpoints are saved under legacy weight names that Trainer's own reload misses."""
    import torch
    from transformers import AutoModelForImageClassification

    state = read_json(target_run / "trainer_state.json")
    best = state["best_model_checkpoint"]
    # the reported validation score is the best epoch's, not the last one's
    assert read_json(target_run / "metrics.json")["metrics"]["validation"]["macro_f1"] == pytest.approx(
        state["best_metric"]
    )
    final = AutoModelForImageClassification.from_pretrained(str(target_run)).state_dict()
    chosen = AutoModelForImageClassification.from_pretrained(best).state_dict()
    assert final.keys() == chosen.keys() and all(torch.equal(final[k], chosen[k]) for k in final)


def test_skipped_images_are_listed_in_the_output_folder(digit_folder, vit_init_dir, tmp_path):
    import hf_finetune

    rows = [f"{p},{p.parent.name}" for p in sorted(digit_folder.rglob("*.png"))]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    listing = tmp_path / "images.csv"
    listing.write_text("\n".join(["path,kind", *rows, "broken.png,7"]) + "\n")
    result = hf_finetune.train(
        "image_folder", model_name_or_path=str(vit_init_dir), train_file=str(listing), image_column="path",
        label_column="kind", skip_bad_images=True, num_train_epochs=1, output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    skipped = (result.output_dir / "skipped_images.txt").read_text().splitlines()
    assert len(skipped) == 2 and skipped[1].startswith("train\t") and skipped[1].split("\t")[1].endswith("broken.png")
    assert sum(read_json(result.output_dir / "metrics.json")["data_sizes"].values()) == 90
