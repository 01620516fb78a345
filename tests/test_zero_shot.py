"""Zero-shot classification by attributes (DAP): the decision rule, the class table's checks, and a real
attribute model that classifies Fashion-MNIST classes it never saw better than chance."""

import math

import numpy as np
import pytest
from conftest import read_json, run_cli

from hf_finetune.analysis.zero_shot import ClassTable, dap_log_scores, dap_predict, parse_class_table
from hf_finetune.errors import UserError

FOOTWEAR = ["clothing", "footwear", "open_toe", "covers_ankle"]


def test_dap_picks_the_class_whose_description_the_attributes_fit():
    """A closed, low shoe: footwear likely, open toe and ankle cover unlikely -> Sneaker, not Sandal or Ankle boot."""
    table = {
        "Sandal": ["footwear", "open_toe"],
        "Sneaker": ["footwear"],
        "Ankle boot": ["footwear", "covers_ankle"],
        "Dress": ["clothing"],
    }
    names = list(table)
    matrix = np.array([[float(a in table[n]) for a in FOOTWEAR] for n in names])
    probs = np.array(
        [
            [0.1, 0.9, 0.2, 0.3],  # sneaker-like
            [0.1, 0.8, 0.7, 0.1],  # sandal-like
            [0.2, 0.9, 0.1, 0.8],  # boot-like
            [0.9, 0.1, 0.1, 0.1],  # clothing
        ]
    )
    assert [names[i] for i in dap_predict(probs, matrix)] == ["Sneaker", "Sandal", "Ankle boot", "Dress"]
    # The score is the log-likelihood of the description: Sneaker on the first image, by hand.
    expected = math.log(0.9) + math.log(0.9) + math.log(0.8) + math.log(0.7)
    assert dap_log_scores(probs, matrix)[0, 1] == pytest.approx(expected)


def test_the_prior_rewards_an_attribute_that_is_rare_among_seen_classes():
    """Without priors the likelier description wins; dividing by p(a) = the seen classes' mean flips it."""
    matrix = np.array([[1.0, 0.0], [0.0, 1.0]])  # A has attribute 0, B has attribute 1
    probs = np.array([[0.6, 0.5]])
    assert dap_predict(probs, matrix).tolist() == [0]
    priors = np.array([0.9, 0.1])  # attribute 0 is on 90% of seen classes, attribute 1 on 10%
    scores = dap_log_scores(probs, matrix, priors)
    # A: log .6 + log .5 - (log .9 + log .9); B: log .4 + log .5 - (log .1 + log .1)
    assert scores[0, 0] == pytest.approx(math.log(0.6 * 0.5 / (0.9 * 0.9)))
    assert scores[0, 1] == pytest.approx(math.log(0.4 * 0.5 / (0.1 * 0.1)))
    assert dap_predict(probs, matrix, priors).tolist() == [1]
    # Priors of 0 or 1 (an attribute no seen class has) are clipped, not log(0).
    assert np.isfinite(dap_log_scores(np.array([[1.0, 0.0]]), matrix, np.array([1.0, 0.0]))).all()


def test_class_table_priors_are_the_seen_classes_mean_attribute_vector():
    table = parse_class_table(
        {"unseen": {"Dress": ["clothing"], "Sneaker": ["footwear"]},
         "seen": {"Sandal": ["footwear", "open_toe"], "Ankle boot": ["footwear", "covers_ankle"]}},
        "table.yaml",
    )  # fmt: skip
    assert table.priors(FOOTWEAR).tolist() == [0.0, 1.0, 0.5, 0.5]
    assert table.matrix(["Sneaker", "Dress"], FOOTWEAR).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert ClassTable(unseen=table.unseen, seen={}, source="x").priors(FOOTWEAR) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"unseen": {"Dress": ["clothing", "has_zip"], "Sneaker": ["footwear"]}}, "does not predict: has_zip"),
        ({"unseen": {"Dress": [], "Sneaker": ["footwear"]}}, "has no attributes"),
        ({"unseen": {"Sneaker": ["footwear"], "Loafer": ["footwear"]}}, "'Sneaker' and 'Loafer'"),
        ({"unseen": {"Dress": ["clothing"]}}, "at least two"),
        ({"seen": {"Dress": ["clothing"]}}, "must be a mapping with `unseen:`"),
        ({"unseen": {"Dress": ["clothing"], "Sneaker": ["footwear"]}, "seen": {"Dress": ["clothing"]}}, "both seen"),
    ],
)
def test_bad_class_tables_are_one_line_errors(values, message):
    with pytest.raises(UserError, match=message) as error:
        parse_class_table(values, "table.yaml").check(FOOTWEAR)
    assert "\n" not in str(error.value)


def test_generalized_candidates_must_differ_from_seen_classes():
    table = parse_class_table(
        {"unseen": {"Dress": ["clothing"], "Sneaker": ["footwear"]}, "seen": {"Shoe": ["footwear"]}}, "t.yaml"
    )
    table.check(FOOTWEAR)  # unseen classes differ from each other: standard zero-shot is fine
    with pytest.raises(UserError, match="'Sneaker' and 'Shoe'"):
        table.check(FOOTWEAR, generalized=True)


def test_packaged_fashion_mnist_table_comes_from_the_one_attribute_table():
    from hf_finetune.analysis.zero_shot import read_class_table
    from hf_finetune.assets.fashion_mnist import (
        ATTRIBUTE_NAMES,
        FASHION_MNIST_ATTRIBUTES,
        FASHION_MNIST_CLASSES,
        FASHION_MNIST_TARGET_CLASSES,
        FASHION_MNIST_UNSEEN_CLASSES,
    )

    table = read_class_table("packaged:fashion-mnist")
    assert list(table.unseen) == ["Dress", "Sneaker"]
    assert set(FASHION_MNIST_UNSEEN_CLASSES) <= set(FASHION_MNIST_TARGET_CLASSES)  # never a pretraining class
    assert {**table.unseen, **table.seen} == {n: tuple(FASHION_MNIST_ATTRIBUTES[n]) for n in FASHION_MNIST_CLASSES}
    table.check(list(ATTRIBUTE_NAMES), generalized=True)
    # Every attribute of an unseen class is on some seen class and off another: each one was learned.
    seen = table.matrix(list(table.seen), list(ATTRIBUTE_NAMES))
    for name in table.unseen:
        for attribute in table.unseen[name]:
            column = seen[:, ATTRIBUTE_NAMES.index(attribute)]
            assert 0 < column.sum() < len(column), attribute


def test_seen_attribute_data_holds_no_unseen_class_image():
    from hf_finetune.assets.fashion_mnist import ATTRIBUTE_NAMES, fashion_mnist_attributes_seen

    data = fashion_mnist_attributes_seen()
    assert len(data["train"]) == 48000 and len(data["test"]) == 8000
    assert data["train"].features["labels"].feature.names == list(ATTRIBUTE_NAMES)
    sets = {tuple(labels) for labels in data["test"]["labels"]}
    dress = (0, 1, 2)
    sneaker = (ATTRIBUTE_NAMES.index("footwear"),)
    assert dress not in sets and sneaker not in sets and len(sets) == 6  # T-shirt = Shirt, Pullover = Coat


def test_cli_rejects_a_single_label_model_and_a_bad_table(vit_init_dir, tmp_path, capsys):
    code, _, err = run_cli(
        ["zero-shot", "--model", str(vit_init_dir), "--classes", "packaged:fashion-mnist", "--data",
         "packaged:fashion-mnist"], capsys,
    )  # fmt: skip
    assert code == 2 and "--multi_label true" in err and len(err.strip().splitlines()) == 1
    table = tmp_path / "classes.yaml"
    table.write_text("unseen:\n  Dress: [clothing]\n  Sneaker: footwear\n  Boot: [footwear]\n")
    code, _, err = run_cli(["zero-shot", "--model", str(vit_init_dir), "--classes", str(table), "--data", "x"], capsys)
    assert code == 2 and "'Sneaker' and 'Boot'" in err


@pytest.mark.slow
def test_attribute_model_classifies_unseen_fashion_mnist_classes_above_chance(pretrained_vit, tmp_path, capsys):
    """Train attributes on 1,200 images of the 8 seen classes; Dress and Sneaker (2,000 test images), named from
    their descriptions alone, must beat chance (1/2) by far."""
    out = tmp_path / "attributes"
    argv = ["train", "--config", "fashion_mnist_zero_shot", "--model_name_or_path", str(pretrained_vit),
            "--max_train_samples", "1200", "--max_eval_samples", "300", "--num_train_epochs", "3",
            "--output_dir", str(out)]  # fmt: skip
    code, _, _ = run_cli(argv, capsys)
    assert code == 0
    # The user's table, as a YAML file: the same classes as packaged:fashion-mnist.
    table = tmp_path / "classes.yaml"
    table.write_text(
        "unseen:\n  Dress: [clothing, upper_body, covers_legs]\n  Sneaker: [footwear]\n"
        "seen:\n  Trouser: [clothing, covers_legs]\n  T-shirt/top: [clothing, upper_body]\n"
        "  Sandal: [footwear, open_toe]\n  Ankle boot: [footwear, covers_ankle]\n  Bag: [accessory]\n"
    )
    report_path = tmp_path / "zero_shot.json"
    code, stdout, _ = run_cli(
        ["zero-shot", "--model", str(out), "--classes", str(table), "--data", "packaged:fashion-mnist",
         "--output", str(report_path)], capsys,
    )  # fmt: skip
    assert code == 0 and "vs chance 0.5000" in stdout
    report = read_json(report_path)
    assert report["images"] == 2000 and report["images_per_class"] == {"Dress": 1000, "Sneaker": 1000}
    unseen = report["unseen"]
    assert unseen["chance"] == 0.5 and unseen["accuracy"] > 0.8, unseen
    assert min(unseen["per_class_accuracy"].values()) > 0.5, unseen
    assert sum(map(sum, unseen["confusion_matrix"]["matrix"])) == 2000
    # Generalized: the same images against all 7 classes. An image right among all candidates is right among
    # the unseen ones too, so it can only be harder (on Fashion-MNIST it falls below chance: README, Advanced transfer).
    generalized = report["generalized"]
    assert len(generalized["candidates"]) == 7 and generalized["chance"] == round(1 / 7, 4)
    assert generalized["accuracy"] <= unseen["accuracy"]
    assert [sum(row) for row in generalized["confusion_matrix"]["matrix"]] == [1000, 1000]
    assert report["attribute_agreement"]["Sneaker"]["footwear"] > 0.9  # the attribute that decides it


def test_csv_class_attribute_matrix_reads_as_the_yaml_table(tmp_path):
    from hf_finetune.analysis.zero_shot import read_class_table
    from hf_finetune.assets.fashion_mnist import ATTRIBUTE_NAMES

    packaged = read_class_table("packaged:fashion-mnist")
    lines = [",".join(["class", "split", *ATTRIBUTE_NAMES])]
    for split, classes in (("unseen", packaged.unseen), ("seen", packaged.seen)):
        for name, has in classes.items():
            lines.append(",".join([name, split, *("1" if a in has else "0" for a in ATTRIBUTE_NAMES)]))
    path = tmp_path / "classes.csv"
    path.write_text("\n".join(lines) + "\n")
    table = read_class_table(str(path))
    assert (table.unseen, table.seen) == (packaged.unseen, packaged.seen)
    path.write_text(lines[0] + "\nDress,unseen,1,1,1,0,0,0,0,yes\n")
    with pytest.raises(UserError, match="line 2: attribute columns hold 0 or 1; covers_ankle"):
        read_class_table(str(path))


def test_class_images_are_the_unseen_classes_of_the_split_and_a_missing_class_is_named():
    from hf_finetune.analysis.zero_shot import load_class_images

    images, names = load_class_images("packaged:digits", "test", "image", "label", ["3", "8"])
    assert set(names) == {"3", "8"} and len(images) == len(names) == 72 and images[0].size == (8, 8)
    with pytest.raises(UserError, match="no images of class.*Dress in the test split"):
        load_class_images("packaged:digits", "test", "image", "label", ["3", "Dress"])
    with pytest.raises(UserError, match="no 'valid' split"):
        load_class_images("packaged:digits", "valid", "image", "label", ["3", "8"])
