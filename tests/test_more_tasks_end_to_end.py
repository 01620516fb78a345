"""Token classification, multi-label text and regression, each trained on the real MiniLM with real fortunes text.

One small run per task (a few hundred examples, 3 epochs), shared by its tests: it must beat its trivial
baseline (all-O, the most frequent label set, the mean target), leave the outputs that make sense for it,
and load with the matching `transformers.pipeline`.
"""

import csv
import json

import pytest
from conftest import FIXTURES, read_json, run_cli

pytestmark = pytest.mark.slow

SMALL = ["--max_train_samples", "320", "--max_eval_samples", "120", "--num_train_epochs", "3",
         "--per_device_train_batch_size", "16", "--logging_steps", "5"]  # fmt: skip
TOPICS = {"computers", "politics", "science", "songs-poems"}


def train(tmp_path_factory, recipe: str, *extra: str):
    from hf_finetune.cli import main

    out = tmp_path_factory.mktemp(recipe) / "model"
    assert main(["train", "--config", recipe, *SMALL, *extra, "--output_dir", str(out)]) == 0
    return out


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- Token classification (NER) ---


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    return train(tmp_path_factory, "fortunes_ner", "--max_seq_length", "128")


def test_ner_beats_all_o_and_reports_per_entity_type(ner_run):
    metrics = read_json(ner_run / "metrics.json")
    test, baseline = metrics["metrics"]["test"], metrics["baseline"]
    assert baseline["name"].startswith("all-O") and baseline["scores"]["f1"] == 0.0
    assert test["f1"] > 0.4, test
    assert test["accuracy"] > baseline["scores"]["accuracy"], (test, baseline)
    per_type = metrics["per_entity_type"]["test"]
    assert set(per_type) <= {"PER", "ORG", "LOC", "DATE"} and per_type["PER"]["f1"] > 0.5, per_type
    assert not (ner_run / "confusion_matrix.png").exists() and not (ner_run / "confusion_matrix.json").exists()
    card = (ner_run / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "entity types: DATE, LOC, ORG, PER" in card
    assert 'aggregation_strategy="first"' in card and f"{test['f1']:.4f}" in card


def test_ner_mistakes_quote_each_sentence_with_its_own_entities(ner_run):
    """The sentences of misclassified.jsonl carry their own gold entities (evaluation keeps the data order)."""
    from hf_finetune.assets.fortunes import fortunes_ner
    from hf_finetune.data.tags import entity_spans

    test = fortunes_ner()["test"]
    names = test.features["ner_tags"].feature.names
    sentences = [(row["tokens"], [names[i] for i in row["ner_tags"]]) for row in test]
    rows = read_lines(ner_run / "misclassified.jsonl")
    assert rows and [r["wrong_words"] for r in rows] == sorted((r["wrong_words"] for r in rows), reverse=True)
    by_text = {" ".join(t): (t, g) for t, g in sentences}
    exact = 0
    for row in rows:
        assert row["entities"] != row["predicted"]
        if row["text"] in by_text:  # scored whole (not cut at max_seq_length, no word the tokenizer drops)
            tokens, tags = by_text[row["text"]]
            assert row["entities"] == [[k, " ".join(tokens[a:b])] for k, a, b in entity_spans(tags)]
            exact += 1
    assert exact >= 0.9 * len(rows)


def test_ner_output_loads_with_the_token_classification_pipeline(ner_run, capsys, tmp_path):
    from transformers import pipeline

    text = "Computers are useless. They can only give you answers. -- Pablo Picasso"
    for strategy in ("simple", "first"):
        entities = pipeline("token-classification", model=str(ner_run), aggregation_strategy=strategy)(text)
        assert all(e["entity_group"] in {"PER", "ORG", "LOC", "DATE"} for e in entities)
    assert any(e["entity_group"] == "PER" and "Picasso" in text[e["start"] : e["end"]] for e in entities), entities

    code, stdout, _ = run_cli(["predict", "--model", str(ner_run), "--text", text], capsys)
    spans = json.loads(stdout)["entities"]
    assert code == 0 and all(text[s["start"] : s["end"]] == s["text"] for s in spans)
    assert any(s["type"] == "PER" and "Picasso" in s["text"] for s in spans), spans

    out = tmp_path / "eval.json"  # the hand-checked CoNLL file, scored per entity as in training
    code, stdout, _ = run_cli(["evaluate", "--model", str(ner_run), "--data", str(FIXTURES / "tiny_ner.conll"),
                               "--output", str(out)], capsys)  # fmt: skip
    result = read_json(out)
    assert code == 0 and result["examples"] == 4 and 0 <= result["f1"] <= 1 and "PER" in result["per_class"]


# --- Multi-label text ---


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory):
    return train(tmp_path_factory, "fortunes_topic_sets", "--learning_rate", "3e-4")  # BCE on a 320-text slice


def test_multi_label_beats_the_most_frequent_label_set(multi_label_run):
    metrics = read_json(multi_label_run / "metrics.json")
    test, baseline = metrics["metrics"]["test"], metrics["baseline"]
    assert baseline["name"] == "most frequent label set"
    assert test["accuracy"] > baseline["scores"]["accuracy"] + 0.15, (test, baseline)
    assert test["micro_f1"] > 0.6 and test["macro_f1"] > 0.55, test
    config = read_json(multi_label_run / "config.json")
    assert config["problem_type"] == "multi_label_classification"
    assert (
        config["multi_label_threshold"] == metrics["multi_label_threshold"] and 0 < config["multi_label_threshold"] < 1
    )
    assert set(read_json(multi_label_run / "confusion_matrix.json")["per_label"]) == TOPICS
    assert not (multi_label_run / "confusion_matrix.png").exists()
    assert "tuned on the validation split" in (multi_label_run / "README.md").read_text()


def test_multi_label_output_loads_with_the_text_classification_pipeline(multi_label_run, capsys):
    from transformers import pipeline

    text = "The compiler crashed while the senator read his speech on the budget."
    scores = pipeline("text-classification", model=str(multi_label_run), top_k=None)([text])[0]
    assert {s["label"] for s in scores} == TOPICS and all(0 < s["score"] < 1 for s in scores)
    code, stdout, _ = run_cli(["predict", "--model", str(multi_label_run), "--text", text], capsys)
    row = json.loads(stdout)
    threshold = read_json(multi_label_run / "config.json")["multi_label_threshold"]
    assert code == 0 and set(row["labels"]) == {k for k, p in row["scores"].items() if p >= threshold}


# --- Regression ---


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    return train(tmp_path_factory, "fortunes_readability", "--learning_rate", "2e-4")


def test_regression_beats_the_mean_predictor(regression_run):
    metrics = read_json(regression_run / "metrics.json")
    test, baseline = metrics["metrics"]["test"], metrics["baseline"]
    assert baseline["name"] == "mean of the training targets"
    assert test["mse"] < 0.8 * baseline["scores"]["mse"] and test["pearson"] > 0.5, (test, baseline)
    config = read_json(regression_run / "config.json")
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "label"}
    assert (regression_run / "predictions_scatter.png").is_file()
    assert (
        not (regression_run / "confusion_matrix.png").exists() and not (regression_run / "misclassified.jsonl").exists()
    )
    assert len(metrics["by_target_quarter"]["test"]) == 4


def test_regression_largest_errors_pair_each_text_with_its_target(regression_run):
    from hf_finetune.assets.fortunes import fortunes_readability

    target = dict(zip(fortunes_readability()["test"]["text"], fortunes_readability()["test"]["label"], strict=True))
    rows = read_lines(regression_run / "largest_errors.jsonl")
    assert len(rows) == 120
    assert [abs(r["error"]) for r in rows] == sorted((abs(r["error"]) for r in rows), reverse=True)
    assert all(r["label"] == pytest.approx(target[r["text"]], abs=1e-3) for r in rows)


def test_regression_output_loads_with_the_text_classification_pipeline(regression_run, capsys, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    text = "Notwithstanding considerable institutional reluctance, the committee ultimately ratified the proposal."
    score = pipeline("text-classification", model=str(regression_run))(text)[0]["score"]
    tokenizer = AutoTokenizer.from_pretrained(str(regression_run))
    model = AutoModelForSequenceClassification.from_pretrained(str(regression_run)).eval()
    with torch.no_grad():
        raw = model(**tokenizer(text, return_tensors="pt")).logits.item()
    assert score == pytest.approx(raw, abs=1e-4)  # the raw output, not squashed by a sigmoid
    code, stdout, _ = run_cli(["predict", "--model", str(regression_run), "--text", text, "--text", "I am."], capsys)
    hard, easy = (json.loads(line)["score"] for line in stdout.strip().splitlines())
    assert code == 0 and hard > easy  # the long-worded sentence reads as harder

    from hf_finetune.assets.fortunes import fortunes_readability

    test = fortunes_readability()["test"].select(range(100))
    path = tmp_path / "test.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "grade"])
        writer.writerows(zip(test["text"], test["label"], strict=True))
    out = tmp_path / "eval.json"
    code, _, _ = run_cli(["evaluate", "--model", str(regression_run), "--data", str(path), "--label_column", "grade",
                          "--output", str(out)], capsys)  # fmt: skip
    result = read_json(out)
    assert code == 0 and result["examples"] == 100 and result["pearson"] > 0.4 and result["mse"] > 0
