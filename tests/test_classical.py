"""Classical heads on frozen MiniLM features of real fortunes text; k-fold CV; `compare` on a tiny slice."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import read_json, run_cli

from hf_finetune.analysis.classical import C_GRID, HEADS, ClassicalPredictor, load_sklearn_pipeline, run_classical
from hf_finetune.analysis.compare.runs import ROW_KEYS
from hf_finetune.analysis.features import features_for_config, load_config_data, load_features
from hf_finetune.data.splits import stratified_folds
from hf_finetune.recipes import parse_config
from hf_finetune.training.cross_validation import CV_METRICS

TINY = ["--max_train_samples", "40", "--max_eval_samples", "20", "--num_train_epochs", "1"]


@pytest.fixture(scope="module")
def fortunes_cache(tmp_path_factory):
    """Mean-pooled MiniLM features of 300 train / 150 validation / 150 test fortunes, and the config behind them."""
    cfg = parse_config(["--config", "fortunes_topics", "--max_train_samples", "300", "--max_eval_samples", "150"])
    out = tmp_path_factory.mktemp("classical") / "features"
    features_for_config(cfg, [cfg.model.model_name_or_path], out, pooling="mean", progress=False)
    return cfg, out


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_beats_the_majority_class(fortunes_cache, tmp_path, head):
    _, features = fortunes_cache
    report = run_classical(features, head, tmp_path / head, cv=3)
    test = report["metrics"]["test"]
    assert test["accuracy"] > report["majority_baseline"] + 0.2, report["markdown"]
    cv = report["cv"]
    assert len(cv["per_fold"]["accuracy"]) == 3 and cv["accuracy_std"] >= 0
    assert cv["accuracy_mean"] > report["majority_baseline"] + 0.1
    assert (tmp_path / head / "run_complete.json").is_file() and (tmp_path / head / "report.md").is_file()


def test_saved_pipeline_predicts_the_same_after_reload_and_on_raw_text(fortunes_cache, tmp_path, capsys):
    cfg, features = fortunes_cache
    out = tmp_path / "logreg"
    run_classical(features, "logreg", out, cv=0)
    test = load_features(features)["test"]
    pipeline = load_sklearn_pipeline(out / "model.skops")
    predicted = pipeline.predict(test.features)
    assert read_json(out / "classical.json")["metrics"]["test"]["accuracy"] == pytest.approx(
        float(np.mean(predicted == test.labels))
    )
    # On raw text the folder's backbone computes the features again: the same labels as from the cache.
    texts = load_config_data(cfg).splits["test"]["text"][:24]
    names = test.label_names
    on_the_fly = [p["label"] for p in ClassicalPredictor(out).predict(texts)]
    assert on_the_fly == [names[i] for i in predicted[:24]]
    code, stdout, err = run_cli(["predict", "--model", str(out), "--text", texts[0], "--text", texts[1]], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["label"] for r in rows] == on_the_fly[:2] and all(0 < r["score"] <= 1 for r in rows)
    # `evaluate` on labelled raw text scores those same predictions.
    labelled = tmp_path / "labelled.csv"
    gold = [names[i] for i in test.labels[:24]]
    pd.DataFrame({"text": texts, "label": gold}).to_csv(labelled, index=False)
    code, stdout, err = run_cli(["evaluate", "--model", str(out), "--data", str(labelled)], capsys)
    assert code == 0, err
    accuracy = np.mean([p == g for p, g in zip(on_the_fly, gold, strict=True)])
    assert stdout.startswith(f"24 examples: accuracy {accuracy:.4f}")


def test_grid_search_picks_C_from_the_grid(fortunes_cache, tmp_path):
    _, features = fortunes_cache
    report = run_classical(features, "linear_svm", tmp_path / "svm", cv=3, grid_c=True)
    assert report["params"]["C"] in C_GRID
    assert "slightly optimistic" in report["cv"]["note"]


def test_folds_are_stratified_disjoint_and_cover_the_data(fortunes):
    labels = np.asarray(fortunes["train"]["label"][:400])
    folds = stratified_folds(labels, 5, seed=42)
    held = [h for _, h in folds]
    assert sorted(np.concatenate(held).tolist()) == list(range(400))  # every row held out exactly once
    for train_idx, held_idx in folds:
        assert not set(train_idx) & set(held_idx)
        assert len(train_idx) + len(held_idx) == 400
    per_fold = np.array([np.bincount(labels[h], minlength=4) for h in held])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 1).all()  # each class spread evenly
    assert [h.tolist() for h in held] != [h.tolist() for _, h in stratified_folds(labels, 5, seed=7)]


@pytest.mark.slow
def test_cv_folds_trains_k_fresh_models_and_resumes(tmp_path, capsys):
    out = tmp_path / "cv"
    argv = ["train", "--config", "fortunes_topics", *TINY, "--cv_folds", "2", "--output_dir", str(out)]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    result = read_json(out / CV_METRICS)
    assert [f["seed"] for f in result["folds"]] == [42, 43]
    assert [f["sizes"] for f in result["folds"]] == [{"train": 20, "validation": 20}] * 2
    test = [f["metrics"]["test"]["accuracy"] for f in result["folds"]]
    assert result["summary"]["test"]["accuracy"]["mean"] == pytest.approx(np.mean(test))
    assert result["summary"]["test"]["accuracy"]["std"] == pytest.approx(np.std(test))
    for i in range(2):
        assert (out / f"fold-{i}" / "run_complete.json").is_file()
    stamp = (out / "fold-0" / "model.safetensors").stat().st_mtime_ns
    code, _, err = run_cli(argv, capsys)  # finished folds are skipped
    assert code == 0 and "fold 1/2 is finished" in err
    assert (out / "fold-0" / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("n_train", "batch", "accumulation", "max_steps", "min_steps", "epochs"),
    [
        (99, 32, 1, -1, 40, 10),  # 4 batches an epoch: 10 epochs reach 40 steps
        (1983, 32, 1, -1, 40, 3),  # already 62 steps an epoch: the recipe's 3 epochs stay
        (99, 16, 2, -1, 40, 14),  # 7 batches, 3 optimizer steps an epoch
        (99, 32, 1, 5, 40, 3),  # max_steps wins, as in Trainer
        (99, 32, 1, -1, 0, 3),  # 0 turns the rule off
    ],
)
def test_min_steps_raises_the_epochs_of_small_fractions(n_train, batch, accumulation, max_steps, min_steps, epochs):
    from hf_finetune.analysis.compare.runs import epochs_for_min_steps

    training = parse_config(["--config", "fortunes_topics", "--per_device_train_batch_size", str(batch),
                             "--gradient_accumulation_steps", str(accumulation), "--max_steps", str(max_steps)]).training  # fmt: skip
    assert epochs_for_min_steps(training, n_train, min_steps) == epochs


@pytest.mark.slow
def test_compare_runs_every_method_fraction_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--config", "fortunes_topics", "--strategies", "linear_probe,features_logreg",
            "--fractions", "0.5,1.0", "--min_steps", "2", *TINY, "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = read_json(out / "compare.json")["rows"]
    assert [(r["method"], r["fraction"]) for r in rows] == [
        ("linear_probe", 0.5), ("features_logreg", 0.5), ("linear_probe", 1.0), ("features_logreg", 1.0)
    ]  # fmt: skip
    for row in rows:
        assert list(row) == list(ROW_KEYS)
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1 and row["train_time_s"] > 0
        assert row["trainable_params"] > 0 and row["split"] == "test"
    assert [r["n_train"] for r in rows] == [20, 20, 40, 40]
    # --min_steps 2: 20 rows are one batch of 32, so 2 epochs; 40 rows are 2 batches, so the recipe's 1
    assert [r["epochs"] for r in rows] == [2, None, 1, None]
    state = read_json(out / "linear_probe" / "frac-0.5" / "seed-42" / "trainer_state.json")
    assert state["global_step"] == 0  # the L-BFGS probe fits the head: no optimizer steps
    probe = read_json(out / "linear_probe" / "frac-0.5" / "seed-42" / "linear_probe.json")
    assert probe["rows"] == 20 and probe["solver"] == "lbfgs"
    assert rows[0]["recipe"] == "fortunes_topics_linear_probe"  # the tuned sibling recipe of the strategy
    assert rows[0]["trainable_params"] == rows[1]["trainable_params"] == 4 * 384 + 4
    assert stdout.count("| linear_probe |") == 2 and (out / "compare.md").is_file()
    code, _, err = run_cli(argv, capsys)
    assert code == 0 and err.count("finished, skipped") == 4
    assert read_json(out / "compare.json")["rows"] == rows
