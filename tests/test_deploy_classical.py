"""Deployment of classical-head folders: `export` writes one graph per backbone (pooling inside) and the
scikit-learn head through skl2onnx, checks both against PyTorch + scikit-learn, and `predict`/`evaluate` on the
export give the trained folder's rows.

Text: mean-pooled MiniLM features of real fortunes (the features' own test rows are the parity rows). Images:
the suite's ViT on real digit images (features made in memory, so the export needs --data).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_json, run_cli
from test_bad_input import assert_one_line_error

from hf_finetune.analysis.classical import run_classical
from hf_finetune.analysis.classical_export import OnnxClassicalPredictor, load_classical
from hf_finetune.analysis.features import extract_splits, features_for_config
from hf_finetune.recipes import parse_config

pytest.importorskip("skl2onnx", reason="the `export` extra (onnx, onnxruntime, onnxscript, skl2onnx) is not installed")


@pytest.fixture(scope="module")
def text_features(tmp_path_factory) -> Path:
    """Mean-pooled MiniLM features of 200 train / 60 validation / 60 test fortunes."""
    cfg = parse_config(["--config", "fortunes_topics", "--max_train_samples", "200", "--max_eval_samples", "60"])
    out = tmp_path_factory.mktemp("classical_export") / "features"
    features_for_config(cfg, [cfg.model.model_name_or_path], out, pooling="mean", progress=False)
    return out


@pytest.fixture(scope="module")
def texts(fortunes) -> list[str]:
    return fortunes["test"]["text"][100:140]


def predictions(folder: Path, texts: list[str], tmp_path: Path, capsys, *flags: str) -> list[dict]:
    source, target = tmp_path / "in.csv", tmp_path / f"{folder.name}{''.join(flags)}.jsonl"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    code, _, err = run_cli(["predict", "--model", str(folder), "--input", str(source), "--output", str(target),
                            *flags], capsys)  # fmt: skip
    assert code == 0, err
    return [json.loads(line) for line in target.read_text().splitlines()]


def same_predictions(ours: list[dict], reference: list[dict], tolerance: float = 1e-4) -> None:
    assert [r["label"] for r in ours] == [r["label"] for r in reference]
    assert all(abs(a["score"] - b["score"]) <= tolerance for a, b in zip(ours, reference, strict=True))


def test_logreg_export_checks_its_features_test_rows_and_predicts_as_the_folder(text_features, texts, tmp_path,
                                                                                 capsys):  # fmt: skip
    folder, out = tmp_path / "logreg", tmp_path / "logreg_onnx"
    run_classical(text_features, "logreg", folder, cv=0)
    code, stdout, err = run_cli(["export", "--model", str(folder), "--out", str(out), "--quantize", "int8",
                                 "--samples", "60", "--accept-int8-drop"], capsys)  # fmt: skip
    assert code == 0, err
    report = read_json(out / "export_report.json")
    # The parity rows are the rows the features were made from: the packaged data set's test split, labelled.
    assert report["parity_rows"] == {"count": 60, "source": "packaged:fortunes-topics (test)", "gold_labels": True}
    fp32, int8 = report["fp32"], report["int8"]
    assert 0 <= fp32["max_abs_feature_diff_vs_pytorch"] <= fp32["tolerance"] == 1e-3
    assert 0 <= fp32["max_abs_score_diff_vs_sklearn"] <= 1e-3
    assert fp32["metric"] == "accuracy" and fp32["onnx"] == fp32["pytorch"] > 40  # 4 topics: chance is 25
    assert fp32["files"] == ["backbone-0/model.onnx", "head.onnx"]
    assert int8["files"] == ["backbone-0/model_int8.onnx"] and int8["size_mb"] < fp32["size_mb"] / 2
    assert int8["drop_points"] == pytest.approx(fp32["onnx"] - int8["int8"], abs=1e-3)
    assert report["head"] == "classical" and report["classical_head"] == "logreg" and report["pooling"] == "mean"
    assert "skl2onnx" in report["versions"] and "max |feature - PyTorch|" in stdout
    for name in ("classical.json", "head.onnx", "backbone-0/config.json", "backbone-0/tokenizer.json"):
        assert (out / name).is_file(), name
    assert not (out / "model.skops").exists()  # prediction from the export needs no scikit-learn pipeline file
    reference = predictions(folder, texts, tmp_path, capsys)
    same_predictions(predictions(out, texts, tmp_path, capsys), reference)
    quantised = predictions(out, texts, tmp_path, capsys, "--int8")
    assert np.mean([a["label"] == b["label"] for a, b in zip(quantised, reference, strict=True)]) >= 0.8
    labelled = tmp_path / "labelled.csv"
    pd.DataFrame({"text": texts, "label": [r["label"] for r in reference]}).to_csv(labelled, index=False)
    for model in (folder, out):
        code, stdout, err = run_cli(["evaluate", "--model", str(model), "--data", str(labelled)], capsys)
        assert code == 0 and stdout.startswith("40 examples: accuracy 1.0000"), err


def test_two_backbones_and_an_svm_head(minilm_dir, fortunes, texts, tmp_path, capsys):
    """Two backbones (features side by side) get a graph each; LinearSVC has no probabilities, so the graph's
    decision values go through the folder's softmax."""
    from test_deploy import tiny_bert
    from transformers import AutoModelForSequenceClassification

    tiny = tiny_bert(tmp_path / "tiny", minilm_dir, AutoModelForSequenceClassification, ["a", "b"])
    names = fortunes["train"].features["label"].names
    splits = {"train": fortunes["train"].select(range(120)), "test": fortunes["test"].select(range(30))}
    sets = extract_splits([minilm_dir, str(tiny)], splits, names, column="text", label_column="label", pooling="mean",
                          progress=False)  # fmt: skip
    folder, out = tmp_path / "svm", tmp_path / "svm_onnx"
    run_classical(sets, "linear_svm", folder, cv=0)
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"text": texts[:20], "label": ["science"] * 20}).to_csv(rows, index=False)
    code, _, err = run_cli(["export", "--model", str(folder), "--out", str(out), "--data", str(rows)], capsys)
    assert code == 0, err
    report = read_json(out / "export_report.json")
    assert report["fp32"]["files"] == ["backbone-0/model.onnx", "backbone-1/model.onnx", "head.onnx"]
    assert report["int8"] is None and not (out / "backbone-0" / "model_int8.onnx").exists()
    x = load_classical(folder).features(texts[:8])
    assert x.shape == (8, 384 + 32)
    classes, scores = OnnxClassicalPredictor(out).head(x)
    ref_classes, ref_scores = load_classical(folder).head(x)
    assert (classes == ref_classes).all() and np.allclose(scores, ref_scores, atol=1e-5)
    same_predictions(predictions(out, texts, tmp_path, capsys), predictions(folder, texts, tmp_path, capsys))


def test_image_classical_export_on_user_images(vit_init_dir, digit_folder, tmp_path, capsys):
    from datasets import Dataset
    from PIL import Image

    from hf_finetune.inference.image_inputs import folder_images

    found = folder_images(digit_folder)
    names = sorted(set(found.labels))
    data = Dataset.from_dict({"image": [Image.open(s).convert("RGB") for s in found.sources],
                              "label": [names.index(label) for label in found.labels]})  # fmt: skip
    sets = extract_splits([str(vit_init_dir)], {"train": data, "test": data}, names, column="image", label_column="label",
                          pooling="cls", progress=False)  # fmt: skip
    folder, out = tmp_path / "image_head", tmp_path / "image_onnx"
    run_classical(sets, "logreg", folder, cv=0)
    code, _, err = run_cli(["export", "--model", str(folder), "--out", str(out)], capsys)
    assert code == 2  # features made in memory record no rows to check on
    assert_one_line_error(err, "records no validation or test rows: pass --data FILE")
    assert not out.exists() and not (tmp_path / "image_onnx.partial").exists()
    code, _, err = run_cli(["export", "--model", str(folder), "--out", str(out), "--data", str(digit_folder),
                            "--samples", "30"], capsys)  # fmt: skip
    assert code == 0, err
    report = read_json(out / "export_report.json")
    assert report["dynamic_axes"] == ["batch"] and report["parity_rows"]["gold_labels"]
    assert (out / "backbone-0" / "preprocessor_config.json").is_file()
    rows = {}
    for model in (folder, out):
        target = tmp_path / f"{model.name}.jsonl"
        code, _, err = run_cli(["predict", "--model", str(model), "--input", str(digit_folder), "--output",
                                str(target)], capsys)  # fmt: skip
        assert code == 0, err
        rows[model] = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows[out]) == len(found.sources)
    same_predictions(rows[out], rows[folder])


def test_classical_export_refusals_are_one_line_and_write_nothing(text_features, tmp_path, capsys):
    knn = tmp_path / "knn"
    run_classical(text_features, "knn", knn, cv=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "classical.json").write_text("{not json")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "classical.json").write_text(json.dumps({"modality": "text", "label_names": ["a", "b"]}))
    cases = [
        (["export", "--model", str(knn), "--out", str(tmp_path / "o1")], "kNN head cannot be exported faithfully"),
        (["export", "--model", str(broken), "--out", str(tmp_path / "o2")], "cannot read .*classical.json"),
        (["export", "--model", str(partial), "--out", str(tmp_path / "o3")], "lacks head, backbones, pooling"),
        (["predict", "--model", str(knn), "--int8", "--text", "hi"], "--int8 runs an export folder's int8 model"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(argv, capsys)
        assert code == 2, (argv, err)
        assert_one_line_error(err, message)
    assert not any((tmp_path / f"o{i}").exists() or (tmp_path / f"o{i}.partial").exists() for i in (1, 2, 3))
