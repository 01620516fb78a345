"""The convex linear probe (`linear_probe` with L-BFGS, and the first phase of `lp_ft`).

What must hold: the model's own forward reproduces scikit-learn's decision function on every
encoder family (the head inputs are captured from that forward, standardisation is folded into
the weights); on a real small set the probe scores what a logistic regression on the same
features scores; the result is a folder `pipeline()` loads; LP-FT starts phase 2 from that head.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from tiny_models import BY_TYPE, build
from transformers import TrainerCallback

import hf_finetune
from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import discover_blocks
from hf_finetune.modeling.probe_head import classifier_linear, fit_probe, head_inputs, write_head
from hf_finetune.recipes import config_from_dict

FAMILIES = ["bert", "distilbert", "roberta", "vit", "deit"]


def tiny_examples(model_type: str, n: int = 60, classes: int = 3) -> list[dict]:
    """Inputs whose class shows in them (a class-dependent token or pixel offset), so the fit is not trivial."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    if model_type in ("vit", "deit"):
        pixels = torch.randn(n, 3, 32, 32, generator=generator) + labels.view(-1, 1, 1, 1) * 0.5
        return [{"pixel_values": pixels[i], "labels": labels[i]} for i in range(n)]
    ids = torch.randint(5, 99, (n, 8), generator=generator)
    ids[:, 1] = labels + 1
    return [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": labels[i]}
            for i in range(n)]  # fmt: skip


def collate(rows: list[dict]) -> dict:
    return {key: torch.stack([r[key] for r in rows]) for key in rows[0]}


@pytest.mark.parametrize("model_type", FAMILIES)
@pytest.mark.parametrize("classes", [2, 3])
def test_model_forward_reproduces_the_decision_function(model_type, classes):
    model = build(BY_TYPE[model_type])
    if classes == 2:  # a binary head: scikit-learn fits one margin, the model has two logits
        model = BY_TYPE[model_type].auto.from_config(
            model.config.__class__(**{**model.config.to_dict(), "num_labels": 2})
        )
    layout = discover_blocks(model)
    linear = classifier_linear(model, layout)
    rows = tiny_examples(model_type, classes=classes)
    x, y = head_inputs(model, linear, rows, collate, batch_size=16)
    fit = fit_probe(x, y, classes, folds=3, seed=0)
    write_head(linear, fit)
    model.eval()
    with torch.inference_mode():
        logits = model(**{k: v for k, v in collate(rows).items() if k != "labels"}).logits.numpy()
    decision = fit.pipeline.decision_function(x)
    if classes == 2:
        np.testing.assert_allclose(logits[:, 1] - logits[:, 0], decision, rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(logits, decision, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), -1).numpy(), fit.pipeline.predict_proba(x),
                               atol=1e-5)  # fmt: skip
    assert fit.C in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0) and fit.folds == 3


def test_a_class_missing_from_train_is_never_predicted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.array([0, 2] * 20)
    x[y == 2] += 2
    fit = fit_probe(x, y, 3, folds=3, seed=0)
    logits = x @ fit.weight.T + fit.bias
    assert fit.weight[1].tolist() == [0.0] * 6 and not (logits.argmax(1) == 1).any()
    np.testing.assert_array_equal(logits.argmax(1), fit.pipeline.predict(x))


# --- Real: MiniLM on a 2-class e-mail-sized slice of the fortunes (72 training rows) ---


@pytest.fixture(scope="module")
def two_topics(tmp_path_factory, fortunes) -> dict:
    """computers vs science, imbalanced like the issue's e-mails: 53 + 27 rows (72 train once 10% validation is held out), 200 test."""
    folder = tmp_path_factory.mktemp("two_topics")
    names = fortunes["train"].features["label"].names
    keep = {names.index("computers"): "computers", names.index("science"): "science"}
    paths = {}
    for split, quota in (("train", {"computers": 53, "science": 27}), ("test", {"computers": 100, "science": 100})):
        rows, counts = [], dict.fromkeys(quota, 0)
        for text, label in zip(fortunes[split]["text"], fortunes[split]["label"], strict=True):
            name = keep.get(label)
            if name and counts[name] < quota[name]:
                counts[name] += 1
                rows.append({"text": text, "label": name})
        paths[split] = folder / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return paths


def probe_values(two_topics, out, **extra) -> dict:
    return {"task": "text_classification", "model_name_or_path": "packaged:all-MiniLM-L6-v2",
            "train_file": str(two_topics["train"]), "test_file": str(two_topics["test"]), "max_seq_length": 64,
            "output_dir": str(out), "per_device_eval_batch_size": 64, "seed": 7, **extra}  # fmt: skip


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, two_topics):
    out = tmp_path_factory.mktemp("probe") / "linear_probe"
    return hf_finetune.train(probe_values(two_topics, out, strategy="linear_probe"))


@pytest.mark.slow
def test_probe_scores_what_logistic_regression_scores_on_the_same_features(probe_run, two_topics, tmp_path):
    """Within 1 point of scikit-learn's LogisticRegression (default C=1) on the same standardised head inputs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModelForSequenceClassification

    from hf_finetune.analysis.features import load_config_data
    from hf_finetune.tasks import TASKS

    cfg = config_from_dict(probe_values(two_topics, tmp_path / "x", strategy="linear_probe"))
    task = TASKS.get("text_classification")(cfg)
    data = load_config_data(cfg)
    tokenizer = task.load_processor()
    encoded = task.encode(data, tokenizer)
    model = AutoModelForSequenceClassification.from_pretrained(str(probe_run.output_dir))
    linear = classifier_linear(model, discover_blocks(model))
    collator = task.data_collator(tokenizer)
    (x_train, y_train), (x_test, y_test) = (head_inputs(model, linear, encoded[s], collator) for s in ("train", "test"))
    assert len(y_train) == 72  # 80 rows less the 10% validation share
    sklearn = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)
    reference = float((sklearn.predict(x_test) == y_test).mean())
    assert probe_run.metrics["test"]["accuracy"] >= reference - 0.01
    assert probe_run.metrics["test"]["accuracy"] > probe_run.majority_baseline + 0.1
    saved = json.loads((probe_run.output_dir / "linear_probe.json").read_text())
    assert saved["rows"] == 72 and saved["solver"] == "lbfgs" and saved["C"] in saved["C_grid"]
    state = json.loads((probe_run.output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 0  # the head was fitted, not trained


@pytest.mark.slow
def test_probe_folder_loads_in_pipeline_and_predicts_like_the_run(probe_run, two_topics):
    from transformers import pipeline

    rows = [json.loads(line) for line in two_topics["test"].read_text().splitlines()]
    classify = pipeline("text-classification", model=str(probe_run.output_dir))
    predicted = [p["label"] for p in classify([r["text"] for r in rows], truncation=True, max_length=64, batch_size=32)]
    accuracy = np.mean([p == r["label"] for p, r in zip(predicted, rows, strict=True)])
    assert accuracy == pytest.approx(probe_run.metrics["test"]["accuracy"], abs=0.011)


class HeadAtStart(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weight = model.classifier.weight.detach().clone()
        self.bias = model.classifier.bias.detach().clone()


@pytest.mark.slow
def test_lp_ft_starts_phase_two_from_the_probe_head(probe_run, two_topics, tmp_path):
    from safetensors.torch import load_file

    from hf_finetune.training.run import run

    cfg = config_from_dict(probe_values(two_topics, tmp_path / "lp_ft", strategy="lp_ft", max_steps=2,
                                        per_device_train_batch_size=16, eval_strategy="no", save_strategy="no",
                                        load_best_model_at_end=False))  # fmt: skip
    head = HeadAtStart()
    result = run(cfg, callbacks=(head,))
    probe = load_file(probe_run.output_dir / "model.safetensors")
    torch.testing.assert_close(head.weight, probe["classifier.weight"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.bias, probe["classifier.bias"], rtol=1e-5, atol=1e-6)
    final = load_file(result.output_dir / "model.safetensors")
    assert not torch.equal(final["classifier.weight"], probe["classifier.weight"])  # then phase 2 trained it
    pretrained_layer = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(final[pretrained_layer], probe[pretrained_layer])  # and the backbone


def test_bad_solver_and_wrong_task_are_one_line_errors(capsys, tmp_path):
    code, _, err = run_cli(["train", "--config", "fortunes_topics", "--strategy", "linear_probe",
                            "--linear_probe_solver", "newton", "--output_dir", str(tmp_path / "a")], capsys)  # fmt: skip
    assert code == 2 and "linear_probe_solver" in err and "Traceback" not in err
    with pytest.raises(UserError, match="lp_ft|L-BFGS probe"):
        config = config_from_dict({"task": "token_classification", "model_name_or_path": "x", "train_file": "x.jsonl",
                                   "strategy": "lp_ft"})  # fmt: skip
        from hf_finetune.strategies.plan import resolve_strategies

        [cls(config) for cls in resolve_strategies(config.strategy.strategy_names)]
    assert not (tmp_path / "a").exists()
