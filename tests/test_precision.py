"""`precision: auto | fp32 | bf16 | fp16`: the resolver for every hardware answer, the older switches, the cached
matmul probe, the record in every output, and real runs and predictions in the precision this machine gets.

The suite pins `auto` to fp32 (`$HF_FINETUNE_PRECISION` in conftest.py) so that its other results do not depend
on which CPU CI drew; the tests here that exercise `auto` on this machine lift the pin.
"""

import json
import re

import pytest
import yaml
from conftest import csv_recipe_args, read_json, run_cli

from hf_finetune.errors import UserError
from hf_finetune.settings.precision import (
    MIN_BF16_SPEEDUP,
    PRECISION_ENV,
    Hardware,
    choose_precision,
    resolve_auto,
)

AMX_CPU = Hardware("cpu", cpu_native_bf16=True, cpu_bf16_speedup=4.1)
AVX2_CPU = Hardware("cpu", cpu_native_bf16=False)
SLOW_BF16_CPU = Hardware("cpu", cpu_native_bf16=True, cpu_bf16_speedup=MIN_BF16_SPEEDUP - 0.2)
H100 = Hardware("cuda", cuda_bf16=True)
T4 = Hardware("cuda", cuda_bf16=False)
MPS = Hardware("mps")

AUTO_CHOICES = [(AMX_CPU, "bf16"), (AVX2_CPU, "fp32"), (SLOW_BF16_CPU, "fp32"), (H100, "bf16"), (T4, "fp16"),
                (MPS, "fp32")]  # fmt: skip
HARDWARE = [h for h, _ in AUTO_CHOICES]


@pytest.mark.parametrize(("hardware", "expected"), AUTO_CHOICES, ids=["amx", "avx2", "slow-bf16", "h100", "t4", "mps"])
def test_auto_takes_what_the_hardware_offers(hardware, expected):
    choice = choose_precision("auto", hardware)
    assert (choice.precision, choice.requested) == (expected, "auto")
    assert choice.reason  # said in the log, metrics.json and the card


@pytest.mark.parametrize("hardware", HARDWARE, ids=["amx", "avx2", "slow-bf16", "h100", "t4", "mps"])
@pytest.mark.parametrize("requested", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_always_wins_except_fp16_on_a_cpu(hardware, requested):
    if requested == "fp16" and hardware.device == "cpu":
        with pytest.raises(UserError, match="fp16 mixed precision needs a CUDA GPU"):
            choose_precision(requested, hardware)
        return
    assert choose_precision(requested, hardware).precision == requested


def test_an_unknown_precision_is_one_line_naming_the_choices():
    with pytest.raises(UserError, match="must be one of auto, fp32, bf16, fp16, not 'fp8'"):
        choose_precision("fp8", AMX_CPU)


def training_args(**values):
    from hf_finetune.settings.arguments import FinetuneTrainingArguments

    return FinetuneTrainingArguments(output_dir="unused", **values)


def test_the_older_switches_and_the_launch_config_count_as_explicit(monkeypatch):
    args = training_args(bf16=True)
    assert (args.precision, args.bf16, args.precision_choice.requested) == ("bf16", True, "bf16")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert training_args().precision == "bf16"
    assert "launch config" in training_args().precision_choice.reason
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # accelerate's default: leaves auto to decide
    assert training_args().precision == resolve_auto("auto").precision


def test_a_precision_that_contradicts_a_switch_is_refused(monkeypatch):
    with pytest.raises(UserError, match="--precision fp32 and --bf16 disagree"):
        training_args(precision="fp32", bf16=True)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.raises(UserError, match="--precision fp32 and the launch config's mixed_precision bf16 disagree"):
        training_args(precision="fp32")


def test_the_environment_pins_what_auto_means_and_nothing_explicit(monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    args = training_args()
    assert (args.precision, args.bf16) == ("bf16", True) and PRECISION_ENV in args.precision_choice.reason
    assert training_args(precision="fp32").precision == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "fp64")
    with pytest.raises(UserError, match=f"\\${PRECISION_ENV} must be one of"):
        training_args()


def test_the_matmul_probe_runs_once_per_machine_and_is_cached(tmp_path, monkeypatch):
    from hf_finetune.settings.hardware import cpu_info, measured_matmul_rates

    monkeypatch.setenv("HF_FINETUNE_CACHE", str(tmp_path))
    first = measured_matmul_rates()
    assert first.fp32 > 1e8 and first.bf16 > 1e8 and first.cpu == cpu_info().describe()
    (cached,) = tmp_path.glob("matmul-*.json")
    assert json.loads(cached.read_text())["fp32"] == first.fp32
    assert measured_matmul_rates() == first  # a second measurement would differ in the last digits


def test_cpu_description_names_model_threads_and_the_flags_that_matter():
    import torch

    from hf_finetune.settings.hardware import REPORTED_FLAGS, cpu_info

    info = cpu_info()
    assert info.threads == torch.get_num_threads() and info.model
    assert set(info.flags) <= set(REPORTED_FLAGS)
    assert info.describe().startswith(f"{info.model}, {info.threads} thread")


def test_eager_attention_is_a_kernel_choice_that_the_saved_config_does_not_keep(tmp_path, minilm_dir):
    from transformers import AutoModelForSequenceClassification

    from hf_finetune.modeling.attention import attention_for, prediction_attention, use_attention

    assert attention_for("bf16", "cpu") == "eager" and attention_for("fp32", "cpu") is None
    assert attention_for("bf16", "cuda") is None
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    with prediction_attention(model):  # never switched: nothing to go back to
        assert model.bert.config._attn_implementation == "sdpa"
    assert use_attention(model, "eager") == ["BertForSequenceClassification"]
    assert model.bert.config._attn_implementation == "eager"
    with prediction_attention(model):  # evaluation and prediction: the checkpoint's own (faster) forward
        assert model.bert.config._attn_implementation == "sdpa"
    assert model.bert.config._attn_implementation == "eager"  # and training's kernel is back
    model.save_pretrained(tmp_path)
    assert "attn" not in (tmp_path / "config.json").read_text()


def help_of(command: str, capsys) -> tuple[int, str]:
    """(exit code, printed help): argparse exits from inside some commands, others return."""
    try:
        code, out, _ = run_cli([command, "--help"], capsys)
    except SystemExit as exit_info:
        code, out = exit_info.code, capsys.readouterr().out
    return code, out


def test_every_command_help_prints_and_train_lists_precision(capsys):
    from hf_finetune.cli.commands import COMMANDS

    for name in COMMANDS:  # a bare % in one help string once made `train --help` a traceback
        code, out = help_of(name, capsys)
        assert code == 0 and out.strip(), name  # (the listing commands print their listing)
    assert re.search(r"--precision \{auto,fp32,bf16,fp16\}", help_of("train", capsys)[1])


# --- real runs on this machine ---


@pytest.mark.slow
def test_auto_trains_in_this_machines_precision_beats_the_majority_and_records_it(
    tmp_path, fortunes_csv, capsys, monkeypatch
):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    expected = resolve_auto("auto")
    if expected.precision != "bf16":
        pytest.skip(f"this machine trains auto in {expected.describe()}; the fp32 path is every other test's")
    out = tmp_path / "auto"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--test_file", str(fortunes_csv["test"]),
            "--num_train_epochs", "3", "--learning_rate", "1e-4", "--per_device_train_batch_size", "16",
            "--output_dir", str(out)]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err[-2000:]
    assert f"precision bf16 ({expected.reason})" in err
    assert "eager attention for BertForSequenceClassification" in err
    summary = read_json(out / "metrics.json")
    assert (summary["precision"], summary["precision_requested"]) == ("bf16", "auto")
    assert summary["hardware"].endswith(", bf16")
    assert yaml.safe_load((out / "run_config.yaml").read_text())["precision"] == "bf16"
    assert f"- Precision: bf16 (auto: {expected.reason})" in (out / "README.md").read_text()
    assert summary["metrics"]["test"]["accuracy"] > summary["majority_baseline"] + 0.2


@pytest.mark.slow
def test_a_pinned_fp32_run_records_fp32_and_its_model_predicts_in_fp32(tmp_path, trained_run, capsys):
    summary = read_json(trained_run / "metrics.json")
    assert (summary["precision"], summary["precision_reason"]) == ("fp32", f"pinned by ${PRECISION_ENV}")
    assert yaml.safe_load((trained_run / "run_config.yaml").read_text())["precision"] == "fp32"


@pytest.mark.slow
def test_bf16_prediction_agrees_with_fp32_on_real_test_texts(trained_run, fortunes_csv):
    import numpy as np
    import pandas as pd

    from hf_finetune.inference.backends import load_for_inference
    from hf_finetune.inference.predictor import Predictor

    frame = pd.read_csv(fortunes_csv["test"])
    texts, gold = frame["review"].tolist(), frame["topic"].tolist()
    fp32 = Predictor(load_for_inference(str(trained_run), precision="fp32"), quiet=True).predict_texts(texts)
    loaded = load_for_inference(str(trained_run), precision="bf16")
    assert loaded.backend.engine == "pytorch bf16"
    bf16 = Predictor(loaded, quiet=True).predict_texts(texts)
    agreement = np.mean([a["label"] == b["label"] for a, b in zip(fp32, bf16, strict=True)])
    accuracy = {name: np.mean([r["label"] == g for r, g in zip(rows, gold, strict=True)])
                for name, rows in (("fp32", fp32), ("bf16", bf16))}  # fmt: skip
    assert agreement >= 0.95, agreement
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.01 + 1e-9, accuracy
    assert max(abs(a["score"] - b["score"]) for a, b in zip(fp32, bf16, strict=True)) < 0.05


def test_an_export_folder_refuses_a_torch_precision(tmp_path):
    from hf_finetune.inference.backends import EXPORT_REPORT, ONNX_FP32, load_for_inference

    config = {"architectures": ["BertForSequenceClassification"], "id2label": {"0": "a"}, "model_type": "bert"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / EXPORT_REPORT).write_text("{}")
    (tmp_path / ONNX_FP32).write_bytes(b"")
    with pytest.raises(UserError, match="--precision bf16 is for PyTorch model folders"):
        load_for_inference(str(tmp_path), precision="bf16")


def test_predicting_auto_follows_the_machine_unless_the_run_asked_for_fp32(tmp_path, monkeypatch):
    from hf_finetune.inference.backends import inference_precision

    monkeypatch.delenv(PRECISION_ENV, raising=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"precision": "fp32", "precision_requested": "fp32"}))
    pinned = inference_precision("auto", tmp_path)
    assert (pinned.precision, pinned.reason) == ("fp32", "the run that trained this model asked for fp32")
    (tmp_path / "metrics.json").write_text(json.dumps({"precision": "bf16", "precision_requested": "auto"}))
    assert inference_precision("auto", tmp_path) == resolve_auto("auto")
    assert inference_precision("bf16", tmp_path).precision == "bf16"
