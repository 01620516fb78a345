"""One real fine-tuning run of the packaged MiniLM on real fortunes text, then everything a user does with it."""

import csv
import json

import pytest
from conftest import N_TEST, read_json, run_cli

pytestmark = pytest.mark.slow

TOPICS = {"computers", "politics", "science", "songs-poems"}


def test_output_folder_is_complete(trained_run):
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "run_config.yaml",
        "metrics.json",
        "trainer_state.json",
        "README.md",
        "confusion_matrix.png",
        "confusion_matrix.json",
        "loss_curves.png",
        "misclassified.jsonl",
        "run_complete.json",
    ):
        assert (trained_run / name).is_file(), name
    assert not list(trained_run.glob("*.bin"))  # safetensors only
    config = read_json(trained_run / "config.json")
    assert set(config["id2label"].values()) == TOPICS


def test_loss_goes_down_and_test_accuracy_beats_majority_class(trained_run):
    history = read_json(trained_run / "trainer_state.json")["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) >= 4
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2
    metrics = read_json(trained_run / "metrics.json")
    test = metrics["metrics"]["test"]
    assert metrics["data_sizes"]["test"] == N_TEST
    assert test["accuracy"] > metrics["majority_baseline"] + 0.2, (test, metrics["majority_baseline"])
    assert 0 <= test["error_rate"] == pytest.approx(1 - test["accuracy"])  # the local `evaluate` metric
    per_class = metrics["per_class"]["test"]
    assert set(per_class) == TOPICS and sum(c["support"] for c in per_class.values()) == N_TEST


def test_confusion_matrix_and_misclassified_agree_with_metrics(trained_run, fortunes_csv):
    cm = read_json(trained_run / "confusion_matrix.json")
    assert cm["split"] == "test"
    total = sum(map(sum, cm["matrix"]))
    correct = sum(cm["matrix"][i][i] for i in range(len(cm["labels"])))
    accuracy = read_json(trained_run / "metrics.json")["metrics"]["test"]["accuracy"]
    assert correct / total == pytest.approx(accuracy)
    wrong = [json.loads(line) for line in (trained_run / "misclassified.jsonl").read_text().splitlines()]
    assert len(wrong) == total - correct
    assert all(w["label"] != w["predicted"] and w["text"] for w in wrong)
    assert [w["score"] for w in wrong] == sorted((w["score"] for w in wrong), reverse=True)
    # each quoted text carries its own gold label: predictions come back in the data's order
    # (transformers 5 length-grouped evaluation batches, which paired texts with other texts' predictions)
    with open(fortunes_csv["test"], newline="", encoding="utf-8") as handle:
        truth = {row["review"]: row["topic"] for row in csv.DictReader(handle)}
    assert all(truth[w["text"]] == w["label"] for w in wrong)


def test_model_card_says_what_was_trained(trained_run):
    card = (trained_run / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert "pipeline_tag: text-classification" in card and "strategy-full" in card
    assert "Trainable parameters:" in card and "model-index" in card
    accuracy = read_json(trained_run / "metrics.json")["metrics"]["test"]["accuracy"]
    assert f"{accuracy:.4f}" in card


def test_plain_transformers_pipeline_loads_the_output(trained_run):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(trained_run))
    result = classifier("The kernel panicked after I recompiled the compiler with the new C library.")[0]
    assert result["label"] in TOPICS and 0 < result["score"] <= 1


def test_evaluate_command_matches_training_metrics(trained_run, fortunes_csv, capsys, tmp_path):
    out = tmp_path / "eval.json"
    code, stdout, _ = run_cli(
        [
            "evaluate",
            "--model",
            str(trained_run),
            "--data",
            str(fortunes_csv["test"]),
            "--text_column",
            "review",
            "--label_column",
            "topic",
            "--output",
            str(out),
        ],
        capsys,
    )
    assert code == 0 and "accuracy" in stdout
    result = read_json(out)
    assert result["examples"] == N_TEST
    expected = read_json(trained_run / "metrics.json")["metrics"]["test"]["accuracy"]
    # Training truncated at 128 tokens, the pipeline at the model maximum: a few long texts may differ.
    assert result["accuracy"] == pytest.approx(expected, abs=0.02)


def test_predict_command_writes_csv_and_jsonl(trained_run, fortunes_csv, capsys, tmp_path):
    out_csv = tmp_path / "preds.csv"
    code, _, _ = run_cli(
        [
            "predict",
            "--model",
            str(trained_run),
            "--input",
            str(fortunes_csv["test"]),
            "--text_column",
            "review",
            "--output",
            str(out_csv),
        ],
        capsys,
    )
    assert code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == N_TEST and rows[0].keys() >= {"text", "label", "score"}
    assert {r["label"] for r in rows} <= TOPICS and all(0 < float(r["score"]) <= 1 for r in rows)

    code, stdout, _ = run_cli(
        [
            "predict",
            "--model",
            str(trained_run),
            "--text",
            "Congress passed the budget bill",
            "--text",
            "the vector space of eigenfunctions",
        ],
        capsys,
    )
    lines = [json.loads(line) for line in stdout.strip().splitlines()]
    assert code == 0 and len(lines) == 2 and all(line["label"] in TOPICS for line in lines)


def test_run_config_repeats_the_run(trained_run):
    from hf_finetune.recipes import parse_config

    cfg = parse_config(["--config", str(trained_run / "run_config.yaml")])
    assert cfg.training.output_dir == str(trained_run)
    assert cfg.data.text_column == "review" and cfg.data.label_column == "topic"
    assert cfg.training.learning_rate == 1e-4 and cfg.training.num_train_epochs == 3
