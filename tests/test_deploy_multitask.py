"""Deployment of multi-task folders: `evaluate --task NAME` scores one head, `export` writes one ONNX graph
with one output per task, and `predict` from that export gives the PyTorch folder's rows.

Folders are written as training writes them (`save_multitask`): tiny BERT and ViT encoders (the MiniLM
tokenizer, the suite's ViT processor) with perturbed heads, so exports take seconds and no head is at
its init; the slow test trains the real `fortunes_multitask` recipe, small, and exports that.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from test_bad_input import assert_one_line_error

pytest.importorskip("onnxruntime", reason="the `export` extra (onnx, onnxruntime, onnxscript) is not installed")

TEXT_TASKS = {"topic": ["computers", "politics", "science", "songs-poems"], "length": ["short", "long"]}
IMAGE_TASKS = {"digit": ["0", "1", "7"], "shape": ["round", "straight"]}


def save_folder(encoder, tasks: dict, folder: Path, preprocessor) -> Path:
    """A multi-task folder as the trainer saves it, heads moved off their init."""
    from hf_finetune.tasks.multi_task.folder import save_multitask
    from hf_finetune.tasks.multi_task.model import MultiTaskModel

    torch.manual_seed(0)
    model = MultiTaskModel(encoder, tasks, dict.fromkeys(tasks, 1.0))
    with torch.no_grad():
        for head in model.heads.values():
            head.weight.normal_(0, 0.5)
            head.bias.normal_(0, 0.1)
    save_multitask(model, folder)
    preprocessor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def text_multitask(minilm_dir, tmp_path_factory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37)  # fmt: skip
    folder = tmp_path_factory.mktemp("mt_text") / "model"
    return save_folder(BertModel(config), TEXT_TASKS, folder, AutoTokenizer.from_pretrained(minilm_dir))


@pytest.fixture(scope="module")
def image_multitask(tmp_path_factory) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    from hf_finetune.assets.models import PROCESSOR_CONFIG, VIT_CONFIG

    torch.manual_seed(0)
    encoder = ViTModel(ViTConfig(**{**VIT_CONFIG, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                    "intermediate_size": 37}))  # fmt: skip
    folder = tmp_path_factory.mktemp("mt_image") / "model"
    return save_folder(encoder, IMAGE_TASKS, folder, ViTImageProcessor(**PROCESSOR_CONFIG))


@pytest.fixture(scope="module")
def labelled_texts(fortunes, tmp_path_factory) -> Path:
    """Real fortunes with a gold column per head (topic: the real topic; length: short below 12 words)."""
    rows = fortunes["test"].select(range(40))
    names = fortunes["test"].features["label"].names
    data = pd.DataFrame({"text": rows["text"], "topic": [names[i] for i in rows["label"]],
                         "length": ["short" if len(t.split()) < 12 else "long" for t in rows["text"]]})  # fmt: skip
    path = tmp_path_factory.mktemp("mt_data") / "rows.csv"
    data.to_csv(path, index=False)
    return path


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_predictions(ours: list[dict], reference: list[dict], tolerance: float = 1e-4) -> None:
    """Equal labels for every head, probabilities within `tolerance`."""
    assert len(ours) == len(reference) and ours
    for a, b in zip(ours, reference, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key.endswith("_score"):
                assert a[key] == pytest.approx(b[key], abs=tolerance), key
            else:
                assert a[key] == b[key], key


def predict_rows(model: Path, argv: list[str], out: Path, capsys) -> list[dict]:
    code, _, err = run_cli(["predict", "--model", str(model), *argv, "--output", str(out)], capsys)
    assert code == 0, err
    return jsonl(out)


# --- evaluate ---


def test_evaluate_scores_one_head_as_predict_labels_it(text_multitask, labelled_texts, tmp_path, capsys):
    rows = predict_rows(text_multitask, ["--input", str(labelled_texts)], tmp_path / "p.jsonl", capsys)
    gold = pd.read_csv(labelled_texts)
    for task in TEXT_TASKS:
        metrics = tmp_path / f"{task}.json"
        code, stdout, err = run_cli(["evaluate", "--model", str(text_multitask), "--data", str(labelled_texts),
                                     "--task", task, "--output", str(metrics)], capsys)  # fmt: skip
        assert code == 0, err
        result = json.loads(metrics.read_text())
        accuracy = np.mean([r[task] == g for r, g in zip(rows, gold[task], strict=True)])
        assert result["task"] == task and result["label_column"] == task  # the column named as the task
        assert result["examples"] == 40 and result["accuracy"] == pytest.approx(accuracy)
        assert set(result["per_class"]) == set(TEXT_TASKS[task]) and 0 <= result["macro_f1"] <= 1
        assert stdout.startswith(f"40 examples (task {task}, gold column {task}): accuracy {accuracy:.4f}, macro f1")
    code, stdout, err = run_cli(["evaluate", "--model", str(text_multitask), "--data", str(labelled_texts),
                                 "--task", "length", "--label_column", "topic"], capsys)  # fmt: skip
    assert code == 2 and "labels not known to the model" in err  # the column the user named is the one read


def test_evaluate_an_image_head_on_a_class_folder(image_multitask, digit_folder, tmp_path, capsys):
    out = tmp_path / "m.json"
    code, stdout, err = run_cli(["evaluate", "--model", str(image_multitask), "--data", str(digit_folder),
                                 "--task", "digit", "--output", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    result = json.loads(out.read_text())
    rows = predict_rows(image_multitask, ["--input", str(digit_folder), "--task", "digit"], tmp_path / "p.jsonl",
                        capsys)  # fmt: skip
    accuracy = np.mean([r["digit"] == Path(r["image"]).parent.name for r in rows])
    assert result["examples"] == 90 and result["accuracy"] == pytest.approx(accuracy)
    assert stdout.startswith("90 examples (task digit, gold column class sub-folder): accuracy")


# --- export, and predict from it ---


def check_multitask_report(out: Path, tasks: dict, rows: int) -> dict:
    report = json.loads((out / "export_report.json").read_text())
    assert report["head"] == "multi_task" and report["output_names"] == list(tasks) and report["tasks"] == tasks
    assert report["parity_rows"]["count"] == rows
    fp32 = report["fp32"]
    assert set(fp32["per_task_max_abs_logit_diff"]) == set(tasks)
    assert 0 <= fp32["max_abs_logit_diff_vs_pytorch"] <= fp32["tolerance"] == 1e-3
    assert fp32["onnx"] == 100.0 and fp32["metric"] == "agreement_with_fp32"
    for name in ("model.onnx", "config.json", "multitask.json"):
        assert (out / name).is_file(), name
    assert not (out / "heads.safetensors").exists() and not (out / "model.safetensors").exists()
    return report


def test_export_text_multitask_and_predict_from_it(text_multitask, labelled_texts, tmp_path, capsys):
    import onnx

    out = tmp_path / "onnx"
    code, stdout, err = run_cli(["export", "--model", str(text_multitask), "--out", str(out), "--data",
                                 str(labelled_texts), "--quantize", "int8", "--accept-int8-drop"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_multitask_report(out, TEXT_TASKS, rows=40)
    assert report["dynamic_axes"] == ["batch", "sequence"] and "--task NAME|all" in stdout
    assert [o.name for o in onnx.load(str(out / "model.onnx")).graph.output] == list(TEXT_TASKS)
    int8 = report["int8"]
    assert set(int8["per_task"]) == set(TEXT_TASKS) and int8["int8"] == min(int8["per_task"].values())
    assert int8["size_mb"] <= report["fp32"]["size_mb"] and (out / "model_int8.onnx").is_file()
    texts = ["--input", str(labelled_texts)]
    torch_rows = predict_rows(text_multitask, texts, tmp_path / "torch.jsonl", capsys)
    onnx_rows = predict_rows(out, texts, tmp_path / "onnx.jsonl", capsys)
    same_predictions(onnx_rows, torch_rows)
    assert {"topic", "topic_score", "length", "length_score"} <= set(onnx_rows[0])
    one = predict_rows(out, [*texts, "--task", "length", "--int8"], tmp_path / "int8.jsonl", capsys)
    assert set(one[0]) == {"text", "length", "length_score"} and len(one) == 40
    code, stdout, err = run_cli(["evaluate", "--model", str(out), "--data", str(labelled_texts), "--task", "topic",
                                 "--output", str(tmp_path / "m.json")], capsys)  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["engine"] == "onnxruntime"


def test_export_image_multitask_and_predict_from_it(image_multitask, digit_folder, tmp_path, capsys):
    out = tmp_path / "onnx"
    code, _, err = run_cli(["export", "--model", str(image_multitask), "--out", str(out), "--data", str(digit_folder),
                            "--samples", "30"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_multitask_report(out, IMAGE_TASKS, rows=30)
    assert report["dynamic_axes"] == ["batch"] and report["int8"] is None
    assert (out / "preprocessor_config.json").is_file()
    images = ["--input", str(digit_folder)]
    torch_rows = predict_rows(image_multitask, images, tmp_path / "torch.jsonl", capsys)
    same_predictions(predict_rows(out, images, tmp_path / "onnx.jsonl", capsys), torch_rows)


# --- bad input: one line, exit 2 ---


def test_multitask_bad_inputs_fail_in_one_line(text_multitask, labelled_texts, tmp_path, capsys):
    model, data = str(text_multitask), str(labelled_texts)
    cases = [
        (["evaluate", "--model", model, "--data", data, "--task", "sentiment"],
         "unknown task 'sentiment'.*topic, length"),
        (["evaluate", "--model", model, "--data", data], "multi-task model: pass --task NAME.*topic, length"),
        (["evaluate", "--model", model, "--data", data, "--task", "topic,length"], "one head at a time"),
        (["evaluate", "--model", model, "--data", data, "--task", "topic", "--label_column", "nope"],
         "has no column 'nope' \\(--label_column\\)"),
        (["evaluate", "--model", model, "--data", data, "--task", "topic", "--int8"], "is a PyTorch model folder"),
        (["export", "--model", model, "--out", str(tmp_path / "o1"), "--quantize", "int4"], "unknown quantisation"),
        (["export", "--model", model, "--out", str(tmp_path / "o2")], "records no validation or test rows"),
    ]  # fmt: skip
    for argv, message in cases:
        code, _, err = run_cli(argv, capsys)
        assert code == 2, (argv, err)
        assert_one_line_error(err, message)
    assert not any(p.name.startswith("o") for p in tmp_path.iterdir())


def test_unknown_task_on_a_multitask_export_is_one_line(text_multitask, labelled_texts, tmp_path, capsys):
    out = tmp_path / "onnx"
    code, _, err = run_cli(["export", "--model", str(text_multitask), "--out", str(out), "--data",
                            str(labelled_texts), "--samples", "4"], capsys)  # fmt: skip
    assert code == 0, err
    for argv, message in [
        (["predict", "--model", str(out), "--task", "sentiment", "--text", "hi"], "unknown task 'sentiment'"),
        (["predict", "--model", str(out), "--int8", "--text", "hi"], "has no model_int8.onnx"),
        (["export", "--model", str(out), "--out", str(tmp_path / "again")], "is already an export"),
    ]:
        code, _, err = run_cli(argv, capsys)
        assert code == 2, (argv, err)
        assert_one_line_error(err, message)


# --- end to end: the real recipe, trained small ---


@pytest.mark.slow
def test_trained_fortunes_multitask_evaluates_exports_and_predicts_from_the_export(tmp_path, capsys):
    """`fortunes_multitask` on MiniLM (96 + 96 rows, 1 epoch), then evaluate each head with the run's own
    gold columns (topic: `label`, readability: `readability`), export with int8 checked on the run's own
    test rows, and predict from the export as from the folder."""
    from hf_finetune.assets.fortunes import fortunes_topics_readability

    model = tmp_path / "model"
    code, _, err = run_cli(["train", "--config", "fortunes_multitask", "--multitask_max_train_samples", "96", "96",
                            "--max_eval_samples", "64", "--num_train_epochs", "1", "--max_seq_length", "32",
                            "--output_dir", str(model), "--disable_tqdm", "true"], capsys)  # fmt: skip
    assert code == 0, err
    test = fortunes_topics_readability()["test"].select(range(60))
    frame = test.to_pandas()
    frame["label"] = [test.features["label"].names[i] for i in frame["label"]]
    frame["readability"] = [test.features["readability"].names[i] for i in frame["readability"]]
    data = tmp_path / "test.csv"
    frame.to_csv(data, index=False)
    for task, column in (("topic", "label"), ("readability", "readability")):
        code, stdout, err = run_cli(["evaluate", "--model", str(model), "--data", str(data), "--task", task], capsys)
        assert code == 0, err
        assert stdout.startswith(f"60 examples (task {task}, gold column {column}): accuracy"), stdout
    out = tmp_path / "onnx"
    code, stdout, err = run_cli(["export", "--model", str(model), "--out", str(out), "--quantize", "int8",
                                 "--accept-int8-drop", "--samples", "40"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_multitask_report(out, {"topic": TEXT_TASKS["topic"], "readability": ["easy", "medium", "hard"]},
                                    rows=40)  # fmt: skip
    assert report["parity_rows"]["source"] == "packaged:fortunes-topics-readability (test)"
    assert 0 <= report["int8"]["int8"] <= 100 and report["int8"]["max_abs_logit_diff_vs_fp32"] > 0
    torch_rows = predict_rows(model, ["--input", str(data)], tmp_path / "torch.jsonl", capsys)
    same_predictions(predict_rows(out, ["--input", str(data)], tmp_path / "onnx.jsonl", capsys), torch_rows)


def test_multitask_predicts_in_the_precision_asked_for(text_multitask, labelled_texts, tmp_path, capsys):
    """`--precision` reaches the multi-task heads as it reaches single models: bf16 autocast labels as fp32
    does on this tiny encoder, its scores within bf16 rounding."""
    from hf_finetune.inference.multitask import load_multitask

    assert load_multitask(text_multitask, precision="bf16").forward.engine == "pytorch bf16"
    assert load_multitask(text_multitask, precision="fp32").forward.engine == "pytorch"
    argv = ["--input", str(labelled_texts), "--task", "all"]
    fp32 = predict_rows(text_multitask, [*argv, "--precision", "fp32"], tmp_path / "fp32.jsonl", capsys)
    bf16 = predict_rows(text_multitask, [*argv, "--precision", "bf16"], tmp_path / "bf16.jsonl", capsys)
    assert len(bf16) == len(fp32) and bf16[0].keys() == fp32[0].keys()
    for head in ("topic", "length"):  # near-ties of a random tiny encoder may flip; most rows must not
        agree = [a[head] == b[head] for a, b in zip(bf16, fp32, strict=True)]
        assert sum(agree) >= 0.9 * len(agree), head
        assert max(abs(a[f"{head}_score"] - b[f"{head}_score"]) for a, b in zip(bf16, fp32, strict=True)) < 0.05
