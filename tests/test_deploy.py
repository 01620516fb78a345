"""Deployment: the fast predict path against `transformers.pipeline`, image predict/evaluate, ONNX export
with its parity report, predict from an export, and the export's bad inputs.

Real checkpoints and data: the packaged MiniLM (heads of each kind), the session's fine-tuned MiniLM, a
ViT built as `hf-finetune pretrain` starts it, real digit and fortune texts; ONNX Runtime is real.
Tiny BERT/ViT configs keep the export tests to seconds where the weights do not matter.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import corrupt_image_csv, run_cli
from test_bad_input import assert_one_line_error

from hf_finetune.inference.backends import ONNX_INT8, load_for_inference
from hf_finetune.inference.onnx_export import EXPORTER, TEXT_EXPORTER
from hf_finetune.inference.pipeline import load_model_pipeline, predict_texts
from hf_finetune.inference.predictor import Predictor

pytest.importorskip("onnxruntime", reason="the `export` extra (onnx, onnxruntime, onnxscript) is not installed")

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def texts(fortunes) -> list[str]:
    """Real fortunes of very different lengths (so length-sorting reorders them), plus edge cases."""
    rows = fortunes["test"].select(range(20))["text"]
    return [*rows, "", "Ok.", "Alice met Bob in Paris. " * 25]


def save_minilm_head(minilm_dir, folder: Path, auto, **config) -> Path:
    from transformers import AutoTokenizer

    auto.from_pretrained(minilm_dir, **config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def text_heads(minilm_dir, tmp_path_factory) -> dict[str, Path]:
    """The packaged MiniLM with a (random) head of each text kind, saved as model folders."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, set_seed

    set_seed(0)
    root = tmp_path_factory.mktemp("heads")
    topics = ["computers", "politics", "science", "songs"]
    labels = {"id2label": dict(enumerate(topics)), "label2id": {t: i for i, t in enumerate(topics)}}
    seq = AutoModelForSequenceClassification
    return {
        "single": save_minilm_head(minilm_dir, root / "single", seq, **labels),
        "multi": save_minilm_head(minilm_dir, root / "multi", seq, problem_type="multi_label_classification",
                                  **labels),  # fmt: skip
        "regression": save_minilm_head(minilm_dir, root / "regression", seq, num_labels=1, problem_type="regression"),
        "tokens": save_minilm_head(minilm_dir, root / "tokens", AutoModelForTokenClassification,
                                   id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)}),
    }  # fmt: skip


def same_rows(ours: list[dict], reference: list[dict], tolerance: float = 2e-4) -> None:
    """Equal rows, numbers within `tolerance` (batches are padded differently, which moves the 4th decimal)."""
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key == "score":
                assert a[key] == pytest.approx(b[key], abs=tolerance)
            elif key == "scores":
                assert list(a[key]) == list(b[key]) or sorted(a[key]) == sorted(b[key])
                assert all(a[key][n] == pytest.approx(b[key][n], abs=tolerance) for n in a[key])
            elif key == "entities":
                assert [(e["type"], e["start"], e["end"], e["text"]) for e in a[key]] == [
                    (e["type"], e["start"], e["end"], e["text"]) for e in b[key]
                ]
                assert all(
                    x["score"] == pytest.approx(y["score"], abs=tolerance) for x, y in zip(a[key], b[key], strict=True)
                )
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("kind", ["single", "multi", "regression", "tokens"])
def test_fast_path_gives_what_pipeline_gives(kind, text_heads, texts):
    folder = str(text_heads[kind])
    ours = Predictor(load_for_inference(folder), batch_size=8).predict_texts(texts)
    reference = predict_texts(load_model_pipeline(folder, batch_size=8), texts)
    same_rows(ours, reference)
    if kind == "tokens":
        assert sum(len(r["entities"]) for r in ours) > 10  # a random head tags plenty: the grouping was exercised


def test_length_sorted_batches_come_back_in_input_order(text_heads, texts):
    loaded = load_for_inference(str(text_heads["single"]))
    one_by_one = Predictor(loaded, batch_size=1).predict_texts(texts[::2])
    batched = Predictor(loaded, batch_size=16).predict_texts(texts)
    same_rows(batched[::2], one_by_one)
    shuffled = list(reversed(texts))
    assert Predictor(loaded, batch_size=16).predict_texts(shuffled) == list(reversed(batched))


def test_predict_prints_throughput_and_a_progress_bar(text_heads, texts, tmp_path, capsys):
    inputs = tmp_path / "in.csv"
    pd.DataFrame({"text": texts * 3}).to_csv(inputs, index=False)
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(["predict", "--model", str(text_heads["single"]), "--input", str(inputs),
                            "--output", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    assert f"{3 * len(texts)} examples in" in err and "/s, pytorch)" in err and "Predicting" in err
    assert len(out.read_text().splitlines()) == 3 * len(texts)


# --- images ---


@pytest.fixture(scope="module")
def digit_vit(tmp_path_factory) -> Path:
    """A ViT as `hf-finetune pretrain` starts it, labelled with the digit folder's classes."""
    from hf_finetune.assets.models import write_init_checkpoint

    return write_init_checkpoint(tmp_path_factory.mktemp("digit_vit") / "model", ["0", "1", "7"])


@pytest.fixture(scope="module")
def multi_label_vit(tmp_path_factory) -> Path:
    from hf_finetune.assets.models import write_init_checkpoint

    folder = write_init_checkpoint(tmp_path_factory.mktemp("ml_vit") / "model", ["round", "straight", "curved"])
    config = json.loads((folder / "config.json").read_text())
    config.update(problem_type="multi_label_classification", multi_label_threshold=0.5)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_image_predict_and_evaluate_on_a_folder(digit_vit, digit_folder, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    code, _, err = run_cli(["predict", "--model", str(digit_vit), "--input", str(digit_folder), "--output", str(out)],
                           capsys)  # fmt: skip
    assert code == 0, err
    rows = pd.read_csv(out, dtype={"label": str})
    assert len(rows) == 90 and set(rows.columns) == {"image", "label", "score"}
    assert set(rows["label"]) <= {"0", "1", "7"} and rows["score"].between(1 / 3, 1).all()
    metrics = tmp_path / "metrics.json"
    code, stdout, err = run_cli(["evaluate", "--model", str(digit_vit), "--data", str(digit_folder),
                                 "--output", str(metrics)], capsys)  # fmt: skip
    assert code == 0, err
    result = json.loads(metrics.read_text())
    predicted = rows.set_index("image")["label"]
    gold = {name: Path(name).parent.name for name in predicted.index}
    accuracy = np.mean([str(predicted[n]) == gold[n] for n in predicted.index])
    assert result["examples"] == 90 and result["accuracy"] == pytest.approx(accuracy)
    assert stdout.startswith("90 examples: accuracy")


def test_unreadable_images_are_reported_per_row(digit_vit, digit_folder, tmp_path, capsys):
    listing = corrupt_image_csv(digit_folder, tmp_path)
    out = tmp_path / "predictions.jsonl"
    argv = ["predict", "--model", str(digit_vit), "--input", str(listing), "--image_column", "file",
            "--output", str(out)]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    errors = {r["image"]: r["error"] for r in rows if "error" in r}
    assert errors == {"truncated.png": errors["truncated.png"], "notes.png": "not an image file",
                      "missing.png": "file not found"}  # fmt: skip
    assert sum("label" in r for r in rows) == 90 and "3 of 93 images could not be read" in err
    code, _, err = run_cli(["evaluate", "--model", str(digit_vit), "--data", str(listing), "--image_column", "file",
                            "--label_column", "category", "--output", str(tmp_path / "m.json")], capsys)  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["examples"] == 90 and set(result["unreadable"]) == set(errors)


def test_multi_label_image_model_predicts_label_sets_and_is_scored(multi_label_vit, digit_folder, tmp_path, capsys):
    images = sorted(digit_folder.rglob("*.png"))[:12]
    listing = tmp_path / "images.jsonl"
    listing.write_text("".join(json.dumps({"image": str(p), "label": ["round", "curved"]}) + "\n" for p in images))
    code, stdout, err = run_cli(["predict", "--model", str(multi_label_vit), "--input", str(listing)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 12
    for row in rows:
        assert list(row["scores"]) == sorted(row["scores"], key=lambda n: -row["scores"][n])
        assert row["labels"] == [n for n, p in row["scores"].items() if p >= 0.5]
    code, stdout, err = run_cli(["evaluate", "--model", str(multi_label_vit), "--data", str(listing)], capsys)
    assert code == 0, err
    assert stdout.startswith("12 examples: micro f1")


# --- export ---


def export(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_cli(["export", *argv], capsys)


def check_report(out: Path, rows: int, gold: bool) -> dict:
    report = json.loads((out / "export_report.json").read_text())
    fp32, int8 = report["fp32"], report["int8"]
    assert report["parity_rows"] == {"count": rows, "source": report["parity_rows"]["source"], "gold_labels": gold}
    assert 0 <= fp32["max_abs_logit_diff_vs_pytorch"] <= fp32["tolerance"] == 1e-3
    assert fp32["onnx"] == pytest.approx(fp32["pytorch"], abs=1e-6) and 0 <= fp32["onnx"] <= 100
    if int8 is not None:
        assert 0 <= int8["int8"] <= 100 and int8["drop_points"] == pytest.approx(fp32["onnx"] - int8["int8"], abs=1e-3)
        assert int8["max_abs_logit_diff_vs_fp32"] > 0  # int8 is not a copy of fp32
        assert int8["size_mb"] < fp32["size_mb"]
        assert (out / ONNX_INT8).is_file() == (not int8["refused"])
    for name in ("config.json", "model.onnx"):
        assert (out / name).is_file()
    # Text models are traced (TorchScript exporter: the faster int8 graph), images exported by dynamo.
    assert report["exporter"] == (EXPORTER if report["head"] == "image" else TEXT_EXPORTER)
    return report


@pytest.mark.slow
def test_export_of_the_fine_tuned_model_checks_its_own_test_rows(trained_run, fortunes_csv, tmp_path, capsys):
    out = tmp_path / "onnx"
    code, stdout, err = export(["--model", str(trained_run), "--out", str(out), "--quantize", "int8",
                                "--samples", "120"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_report(out, rows=120, gold=True)
    assert report["parity_rows"]["source"] == str(fortunes_csv["test"])  # the run's own test file
    assert report["fp32"]["metric"] == "accuracy" and report["fp32"]["pytorch"] > 50  # 4 topics: chance is 25
    assert report["int8"]["drop_points"] <= 1 and not report["int8"]["refused"]
    assert "parity on 120 rows" in stdout
    texts = pd.read_csv(fortunes_csv["test"])["review"].tolist()[:60]
    ours = Predictor(load_for_inference(str(trained_run))).predict_texts(texts)
    same_rows(Predictor(load_for_inference(str(out))).predict_texts(texts), ours, tolerance=1e-4)
    int8 = Predictor(load_for_inference(str(out), int8=True)).predict_texts(texts)
    assert np.mean([a["label"] == b["label"] for a, b in zip(int8, ours, strict=True)]) >= 0.9
    code, stdout, err = run_cli(["evaluate", "--model", str(out), "--int8", "--data", str(fortunes_csv["test"]),
                                 "--text_column", "review", "--label_column", "topic"], capsys)  # fmt: skip
    assert code == 0 and stdout.startswith(f"{len(pd.read_csv(fortunes_csv['test']))} examples: accuracy"), err


def tiny_bert(folder: Path, minilm_dir, auto, labels: list[str]) -> Path:
    """A 2-layer BERT with the MiniLM tokenizer: exports in seconds; the weights do not matter for parity."""
    from transformers import AutoTokenizer, BertConfig, set_seed

    set_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})  # fmt: skip
    auto.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(folder)
    return folder


def test_export_ner_model_with_gold_tags_and_predict_from_it(minilm_dir, fortunes, tmp_path, capsys):
    from transformers import AutoModelForTokenClassification

    model = tiny_bert(tmp_path / "ner", minilm_dir, AutoModelForTokenClassification, TAGS)
    sentences = [t.split()[:30] for t in fortunes["test"].select(range(30))["text"] if t.split()]
    data = tmp_path / "ner.jsonl"
    with open(data, "w") as handle:
        for words in sentences:
            tags = ["B-PER" if w[:1].isupper() else "O" for w in words]
            handle.write(json.dumps({"tokens": words, "ner_tags": tags}) + "\n")
    out = tmp_path / "ner_onnx"
    code, _, err = export(["--model", str(model), "--out", str(out), "--data", str(data), "--quantize", "int8",
                           "--accept-int8-drop"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_report(out, rows=len(sentences), gold=True)
    assert report["head"] == "token" and report["fp32"]["metric"] == "entity_f1"
    assert (report["int8"]["warning"] is not None) == (report["int8"]["drop_points"] > 1)
    texts = [" ".join(words) for words in sentences]
    ours = Predictor(load_for_inference(str(model))).predict_texts(texts)
    same_rows(Predictor(load_for_inference(str(out))).predict_texts(texts), ours, tolerance=1e-4)


def test_export_image_model_and_predict_from_it(digit_vit, digit_folder, tmp_path, capsys):
    out = tmp_path / "vit_onnx"
    code, _, err = export(["--model", str(digit_vit), "--out", str(out), "--data", str(digit_folder),
                           "--quantize", "int8", "--accept-int8-drop", "--samples", "60"], capsys)  # fmt: skip
    assert code == 0, err
    report = check_report(out, rows=60, gold=True)
    assert report["head"] == "image" and report["dynamic_axes"] == ["batch"]
    assert (out / "preprocessor_config.json").is_file()
    torch_rows = tmp_path / "torch.jsonl"
    onnx_rows = tmp_path / "onnx.jsonl"
    for model, target in ((digit_vit, torch_rows), (out, onnx_rows)):
        code, _, err = run_cli(["predict", "--model", str(model), "--input", str(digit_folder), "--output",
                                str(target)], capsys)  # fmt: skip
        assert code == 0, err
    same_rows([json.loads(x) for x in onnx_rows.read_text().splitlines()],
              [json.loads(x) for x in torch_rows.read_text().splitlines()], tolerance=1e-4)  # fmt: skip


@pytest.fixture
def plain_export_args(minilm_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = tiny_bert(tmp_path / "tiny", minilm_dir, AutoModelForSequenceClassification, ["a", "b"])
    data = tmp_path / "rows.csv"
    pd.DataFrame({"text": ["one text", "another, longer text"], "label": ["a", "b"]}).to_csv(data, index=False)
    return model, data


def test_export_bad_inputs_fail_in_one_line(plain_export_args, tmp_path, capsys):
    model, data = plain_export_args
    not_empty = tmp_path / "full"
    not_empty.mkdir()
    (not_empty / "keep.txt").write_text("mine")
    bare = tmp_path / "bare"
    bare.mkdir()
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "id2label": {"0": "a"}}))
    cases = [
        (["--model", str(bare), "--out", str(tmp_path / "o1")], "has no config.json: it is not a model folder"),
        (["--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")], "does not exist"),
        (["--model", str(encoder), "--out", str(tmp_path / "o3")], "holds a BertModel; supported: text sequence"),
        (["--model", str(model), "--out", str(tmp_path / "o4"), "--format", "tflite"], "unknown format 'tflite'"),
        (["--model", str(model), "--out", str(tmp_path / "o5"), "--quantize", "int4"], "unknown quantisation"),
        (["--model", str(model), "--out", str(not_empty)], "already exists and is not empty"),
        (["--model", str(model)], "the following arguments are required: --out"),
    ]
    for argv, message in cases:
        code, _, err = export(argv, capsys)
        assert code == 2, (argv, err)
        assert_one_line_error(err, message)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))
    assert [p.name for p in not_empty.iterdir()] == ["keep.txt"]


def test_export_without_known_rows_asks_for_data_and_writes_nothing(plain_export_args, tmp_path, capsys):
    model, data = plain_export_args
    out = tmp_path / "out"
    code, _, err = export(["--model", str(model), "--out", str(out)], capsys)
    assert code == 2
    assert_one_line_error(err, "records no validation or test rows.*pass --data FILE")
    assert not out.exists() and not (tmp_path / "out.partial").exists()
    code, _, err = export(["--model", str(model), "--out", str(out), "--data", str(data)], capsys)
    assert code == 0, err
    report = check_report(out, rows=2, gold=True)
    assert report["int8"] is None and not (out / ONNX_INT8).exists()
    code, _, err = run_cli(["export", "--model", str(out), "--out", str(tmp_path / "again")], capsys)
    assert code == 2
    assert_one_line_error(err, "is already an export")


def test_int8_beyond_the_allowed_drop_is_refused_and_fp32_kept(plain_export_args, texts, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    """The threshold is lowered below any possible drop, so the refusal path runs on a real export."""
    from hf_finetune.inference import onnx_export as export_module

    model, _ = plain_export_args
    data = tmp_path / "unlabelled.csv"
    pd.DataFrame({"text": texts[:20]}).to_csv(data, index=False)
    monkeypatch.setattr(export_module, "MAX_INT8_DROP", -101.0)
    out = tmp_path / "refused"
    code, _, err = export(["--model", str(model), "--out", str(out), "--data", str(data), "--quantize", "int8"],
                          capsys)  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "int8 loses .* agreement_with_fp32 .*the int8 model was not kept")
    report = check_report(out, rows=20, gold=False)
    assert report["int8"]["refused"] and not (out / ONNX_INT8).exists()
    code, _, err = run_cli(["predict", "--model", str(out), "--int8", "--text", "hi"], capsys)
    assert code == 2
    assert_one_line_error(err, "has no model_int8.onnx")


def test_export_merges_lora_adapters(minilm_dir, tmp_path, capsys):
    """An adapter folder as the suite writes it (adapters + trained head + config naming the task class)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_finetune.modeling.adapters import save_adapter_config

    base = tiny_bert(tmp_path / "base", minilm_dir, AutoModelForSequenceClassification, ["a", "b", "c"])
    wrapped = get_peft_model(AutoModelForSequenceClassification.from_pretrained(base),
                             LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"]))  # fmt: skip
    for name, parameter in wrapped.named_parameters():
        if "lora_B" in name:  # as if trained: a zero B would make the adapters a no-op
            parameter.data.normal_(0, 0.5)
    adapters = tmp_path / "lora"
    wrapped.save_pretrained(adapters)
    save_adapter_config(wrapped, adapters)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(adapters)
    data = tmp_path / "rows.csv"
    texts = ["the compiler crashed", "a song about rain", "the senate voted today", "atoms and stars"]
    pd.DataFrame({"text": texts}).to_csv(data, index=False)
    out = tmp_path / "lora_onnx"
    code, _, err = export(["--model", str(adapters), "--out", str(out), "--data", str(data)], capsys)
    assert code == 0, err
    report = check_report(out, rows=4, gold=False)
    assert report["adapters_merged"] is True
    encoded = AutoTokenizer.from_pretrained(minilm_dir)(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        adapted = wrapped.eval()(**encoded).logits.numpy()
        plain = AutoModelForSequenceClassification.from_pretrained(base).eval()(**encoded).logits.numpy()
    exported = load_for_inference(str(out)).backend({k: v.numpy() for k, v in encoded.items()})
    assert np.abs(exported - adapted).max() < 1e-4 < np.abs(exported - plain).max()
