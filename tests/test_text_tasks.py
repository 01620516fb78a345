"""Multi-label text, regression, sentence pairs and class weights: data, encoding, metrics and losses.

Fast: real tokenizer and real fortunes text, tiny random models where a forward pass is needed.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from test_bad_input import assert_one_line_error

from hf_finetune.errors import UserError
from hf_finetune.recipes import config_from_dict
from hf_finetune.tasks import TASKS


def make_task(minilm_dir, task="text_classification", **values):
    cfg = config_from_dict({"task": task, "model_name_or_path": minilm_dir, "output_dir": "unused", **values})
    return TASKS.get(task)(cfg)


class Prediction:
    """What Trainer's evaluation hands compute_metrics: predictions and label ids."""

    def __init__(self, predictions, label_ids):
        self.predictions, self.label_ids = np.asarray(predictions), np.asarray(label_ids)


# --- Multi-label text ---


def test_multi_label_lists_and_separated_strings_become_float_multi_hot(minilm_dir, tmp_path, fortunes):
    texts = fortunes["train"]["text"][:12]
    tags = [["computers"], ["science", "politics"], ["politics"]] * 4
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "labels": g}) + "\n" for t, g in zip(texts, tags, strict=True)))
    csv = tmp_path / "tags.csv"
    pd.DataFrame({"text": texts, "topics": ["|".join(g) for g in tags]}).to_csv(csv, index=False)
    from_lists = make_task(minilm_dir, train_file=str(jsonl), label_column="labels", multi_label=True)
    from_strings = make_task(
        minilm_dir, train_file=str(csv), label_column="topics", multi_label=True, multi_label_separator="|"
    )
    for task in (from_lists, from_strings):
        data = task.load_data()
        assert data.label_names == ["computers", "politics", "science"]
        encoded = task.encode(data, task.load_processor())
        # A target column named `labels` must not make datasets store the multi-hot floats as ClassLabel ids.
        assert str(encoded["train"].features["labels"].feature.dtype) == "float32" or encoded["train"].features[
            "labels"
        ].feature.dtype.startswith("float")
        row = next(r for r in encoded["train"] if sum(r["labels"]) == 2)
        assert row["labels"] == [0.0, 1.0, 1.0]
        assert task.load_model(data.label_names)[0].config.problem_type == "multi_label_classification"


def test_multi_label_threshold_decides_and_is_tuned_on_validation():
    from hf_finetune.evaluation.metrics import make_multilabel_compute_metrics, multilabel_predictions, tune_threshold

    # sigmoid(0) = 0.5, sigmoid(-1) = 0.27, sigmoid(1) = 0.73
    logits = np.array([[1.0, -1.0], [-1.0, -1.0], [0.0, 1.0]])
    assert multilabel_predictions(logits, 0.5).tolist() == [[1, 0], [0, 0], [1, 1]]
    assert multilabel_predictions(logits, 0.25).tolist() == [[1, 1], [1, 1], [1, 1]]
    gold = np.array([[1, 1], [0, 1], [0, 1]])
    # Only thresholds at or below 0.27 turn on label 1 of rows 0 and 1 (gold on); above 0.5 row 2's label 0
    # (gold off) goes off too. The best subset accuracy: 0.05-0.25 gives rows 0 and 2 right... check by hand:
    # t <= 0.25: [[1,1],[1,1],[1,1]] -> row 0 right -> 1/3; 0.3-0.5: [[1,0],[0,0],[1,1]] -> 0/3;
    # 0.55-0.7: [[1,0],[0,0],[0,1]] -> row 2 right -> 1/3; 0.75+: all off -> 0/3. Ties go to the one nearest 0.5.
    threshold, score = tune_threshold(logits, gold, "accuracy")
    assert (threshold, score) == (0.55, pytest.approx(1 / 3))
    state = {"t": 0.5}
    compute = make_multilabel_compute_metrics(lambda: state["t"])
    assert compute(Prediction(logits, gold))["accuracy"] == 0.0
    state["t"] = 0.55  # the callable is read at each evaluation, so a tuned threshold applies at once
    assert compute(Prediction(logits, gold))["accuracy"] == pytest.approx(1 / 3)


def test_threshold_tuning_needs_multi_label(minilm_dir):
    with pytest.raises(UserError, match="multi_label_tune_threshold needs --multi_label true"):
        make_task(minilm_dir, dataset_name="packaged:fortunes-topics", multi_label_tune_threshold=True)


# --- Regression ---


def test_regression_metrics_on_a_known_prediction():
    from hf_finetune.evaluation.metrics import make_regression_compute_metrics, mean_baseline, regression_scores

    scores = regression_scores([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])  # a perfect linear relation, off by 1, 2, 3
    assert scores["pearson"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)
    assert scores["mse"] == pytest.approx(14 / 3) and scores["mae"] == pytest.approx(2.0)
    assert scores["rmse"] == pytest.approx((14 / 3) ** 0.5)
    reversed_order = regression_scores([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
    assert reversed_order["pearson"] == pytest.approx(-1.0) and reversed_order["spearman"] == pytest.approx(-1.0)
    assert regression_scores([1.0, 2.0], [5.0, 5.0])["pearson"] == 0.0  # constant prediction: undefined, reported 0
    # Trainer hands predictions of shape (n, 1)
    computed = make_regression_compute_metrics()(Prediction([[2.0], [4.0], [6.0]], [1.0, 2.0, 3.0]))
    assert computed == pytest.approx(scores)
    # the mean predictor: train mean 2 against targets 1, 2, 3 -> errors 1, 0, 1
    assert mean_baseline([1.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(
        {"mse": 2 / 3, "rmse": (2 / 3) ** 0.5, "mae": 2 / 3}
    )


@pytest.mark.parametrize(
    ("suffix", "targets", "message"),
    [
        (".csv", ["1.5", "abc", "2", "", "3"], r"2 row\(s\) of the train split have a target in column 'score' that "
                                               r"is not a finite number: rows 1 \('abc'\), 3 \(empty\)"),
        (".parquet", [1.5, float("nan"), 2.0, 2.5, float("inf")], r"rows 1 \(empty\), 4 \(inf\)"),  # NaN: null
    ],
)  # fmt: skip
def test_regression_targets_that_are_not_numbers_name_the_rows(suffix, targets, message, tmp_path, capsys, fortunes):
    path = tmp_path / f"scores{suffix}"
    frame = pd.DataFrame({"text": fortunes["train"]["text"][:5], "score": targets})
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    out = tmp_path / "out"
    argv = ["train", "--config", "fortunes_readability", "--train_file", str(path), "--label_column", "score",
            "--output_dir", str(out)]  # fmt: skip
    code, _, stderr = run_cli(argv, capsys)
    assert code == 2
    assert_one_line_error(stderr, message)
    assert not out.exists()


def test_regression_data_and_head(minilm_dir):
    task = make_task(minilm_dir, task="text_regression", dataset_name="packaged:fortunes-readability")
    data = task.load_data()
    assert data.label_names == ["label"] and data.splits["train"].features["label"].dtype == "float32"
    assert 0 <= min(data.splits["test"]["label"]) and max(data.splits["test"]["label"]) <= 20
    encoded = task.encode(data, task.load_processor())
    assert isinstance(encoded["train"][0]["labels"], float)
    model = task.load_model(data.label_names)[0]
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    # the new head learns standardised targets and starts as the mean predictor (z = 0)
    targets = np.asarray(data.splits["train"]["label"], dtype=float)
    assert task.scale == pytest.approx((targets.mean(), targets.std())) and model.classifier.bias.item() == 0.0
    # pearson picks the best checkpoint; an error metric chosen instead is minimised
    assert (task.cfg.training.metric_for_best_model, task.cfg.training.greater_is_better) == ("pearson", True)
    mse = make_task(minilm_dir, task="text_regression", dataset_name="x", metric_for_best_model="mse")
    assert mse.cfg.training.greater_is_better is False


# --- Sentence pairs ---


def test_regression_head_folds_the_standardisation_into_its_last_layer(minilm_dir):
    """Trained on z = (y - mean) / std, the saved head outputs y: scores and loss agree before and after the fold."""
    task = make_task(minilm_dir, task="text_regression", dataset_name="packaged:fortunes-readability",
                     max_train_samples=40)  # fmt: skip
    data = task.load_data()
    model = task.load_model(data.label_names)[0].eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)  # a head that has learnt something
        model.classifier.bias.fill_(0.3)
    tokenizer = task.load_processor()
    batch = tokenizer(data.splits["test"]["text"][:4], padding=True, return_tensors="pt")
    labels = torch.tensor(data.splits["test"]["label"][:4])
    loss_fn, mean, std = task.loss_function(data), *task.scale
    with torch.no_grad():
        z = model(**batch).logits
        loss_before, units_before = loss_fn(z, labels), task.in_units(z.numpy())
        task.after_training(type("T", (), {"model": model}), None, data)
        y = model(**batch).logits
    assert task.scale is None and y.numpy() == pytest.approx(units_before, abs=1e-4)
    assert y.numpy() == pytest.approx(z.numpy() * std + mean, abs=1e-4) and task.in_units(y.numpy()) is not None
    assert loss_fn(y, labels).item() == pytest.approx(loss_before.item(), rel=1e-5)


@pytest.mark.parametrize("task_name", ["text_classification", "text_regression"])
def test_pair_encoding_order_follows_the_named_columns(task_name, minilm_dir, tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame(
        {"premise": ["the cat sat on the mat"] * 4, "hypothesis": ["a dog barked"] * 4, "label": [0, 1, 0, 1]}
    ).to_csv(path, index=False)
    for first, second in (("premise", "hypothesis"), ("hypothesis", "premise")):
        task = make_task(minilm_dir, task_name, train_file=str(path), validation_file=str(path),
                         text_column=first, text_pair_column=second)  # fmt: skip
        tokenizer = task.load_processor()
        row = task.encode(task.load_data(), tokenizer)["validation"][0]
        texts = {"premise": "the cat sat on the mat", "hypothesis": "a dog barked"}
        assert tokenizer.decode(row["input_ids"]) == f"[CLS] {texts[first]} [SEP] {texts[second]} [SEP]"
        n_first = len(tokenizer(texts[first])["input_ids"])  # [CLS] first [SEP]
        assert row["token_type_ids"] == [0] * n_first + [1] * (len(row["input_ids"]) - n_first)


# --- Class weights ---


def test_auto_class_weights_are_balanced():
    from hf_finetune.evaluation.metrics import class_weight_vector

    # 4 examples, 2 classes present (3 and 1), class 2 absent: n / (present classes x count)
    assert class_weight_vector("auto", [0, 0, 0, 1], 3).tolist() == pytest.approx([4 / 6, 2.0, 0.0])
    assert class_weight_vector([1.0, 5.0], [0, 1], 2).tolist() == [1.0, 5.0]
    with pytest.raises(UserError, match="class_weights has 3 weights but there are 2 labels"):
        class_weight_vector([1.0, 2.0, 3.0], [0, 1], 2)


def test_class_weights_change_the_loss_as_expected(minilm_dir, fortunes, tmp_path):
    """The task's loss is torch's weighted mean, sum(w_y * CE) / sum(w_y); the trainer uses it in place of the
    model's own loss; equal weights give the unweighted loss."""
    from hf_finetune.engine.trainer import StrategyTrainer
    from hf_finetune.settings.arguments import FinetuneTrainingArguments
    from hf_finetune.strategies.plan import TransferPlan

    task = make_task(minilm_dir, dataset_name="packaged:fortunes-topics", class_weights="1,4,1,1", max_train_samples=40)
    data = task.load_data()
    loss_fn = task.loss_function(data)
    logits = torch.tensor([[2.0, 0.5, 0.1, 0.0], [0.3, 0.2, 1.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    per_example = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weights = torch.tensor([1.0, 4.0, 4.0])
    assert loss_fn(logits, labels).item() == pytest.approx((weights * per_example).sum().item() / 9)
    unweighted = per_example.mean().item()
    assert loss_fn(logits, labels).item() > unweighted  # the up-weighted class 1 is the one mispredicted in row 1
    equal = make_task(minilm_dir, dataset_name="packaged:fortunes-topics", class_weights="2,2,2,2")
    assert equal.loss_function(data)(logits, labels).item() == pytest.approx(unweighted)

    # In the trainer, on a real forward pass of the real checkpoint
    model = task.load_model(data.label_names)[0].eval()
    tokenizer = task.load_processor()
    batch = tokenizer(fortunes["train"]["text"][:3], padding=True, return_tensors="pt")
    batch["labels"] = labels
    args = FinetuneTrainingArguments(output_dir=str(tmp_path), eval_strategy="no", save_strategy="no",
                                     load_best_model_at_end=False)  # fmt: skip
    trainer = StrategyTrainer(model=model, plan=TransferPlan([], model, [], distributed=False), args=args,
                              loss_function=loss_fn)  # fmt: skip
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
        expected = loss_fn(outputs["logits"], labels)
        own = model(**batch).loss
    assert loss.item() == pytest.approx(expected.item()) and loss.item() != pytest.approx(own.item())


def test_class_weights_are_reported_in_the_model_card(minilm_dir):
    from hf_finetune.training.model_card import build_model_card

    task = make_task(minilm_dir, dataset_name="packaged:fortunes-topics", class_weights="auto", max_train_samples=200)
    data = task.load_data()
    task.loss_function(data)
    extras = task.summary_extras(data)
    counts = np.bincount(data.splits["train"]["label"], minlength=4)
    expected = counts.sum() / (4 * counts)
    assert list(extras["class_weights"].values()) == pytest.approx(expected, abs=1e-4)
    summary = {"label_names": data.label_names, "data_sizes": {"train": 180}, "parameters": (10, 10), "blocks": [],
               "metrics": {"test": {"accuracy": 0.5, "macro_f1": 0.4}}, "train_runtime": 1.0,
               "baseline": {"name": "majority class", "scores": {"accuracy": 0.3}}, **extras}  # fmt: skip
    card = str(build_model_card(task.cfg, task, summary))
    assert "Class-weighted cross-entropy (auto: n / (classes x count)): computers" in card


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"task": "text_regression", "class_weights": "auto"}, "class_weights is for single-label classification"),
        ({"task": "token_classification", "class_weights": "auto"}, "class_weights is for single-label"),
        ({"multi_label": True, "class_weights": "auto"}, "class_weights is for single-label classification"),
        ({"class_weights": "heavy"}, "class_weights must be none, auto, or positive numbers"),
        ({"class_weights": "1,-2"}, "class_weights must be none, auto, or positive numbers"),
    ],
)
def test_class_weights_where_they_do_not_apply_are_refused(values, message, minilm_dir):
    values = {"task": "text_classification", "dataset_name": "packaged:fortunes-topics", **values}
    with pytest.raises(UserError, match=message):
        make_task(minilm_dir, values.pop("task"), **values)
