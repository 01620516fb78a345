"""The benchmark harness: token and padding counts on a constructed batch, the MFU and training FLOP formulas,
the ratio targets, and a quick run of every configuration that writes every column. No wall-clock assertion
anywhere: the quick run's ratios are reported, never asserted against the targets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from bench.measure import (
    batch_token_counts,
    device_peak_flops,
    model_flops_utilisation,
    non_embedding_parameters,
    padding_share,
    training_flops_per_token,
)
from bench.run import achieved_flops, peak_share, targets

REPO = Path(__file__).resolve().parent.parent


def test_token_counts_and_padding_share_of_a_collated_batch(minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    texts = ["short", "a somewhat longer sentence here", "the longest text of the three, with several more words"]
    encoded = [tokenizer(t) for t in texts]
    lengths = [len(e["input_ids"]) for e in encoded]  # with [CLS] and [SEP]
    batch = DataCollatorWithPadding(tokenizer)(encoded)
    real, padded = batch_token_counts(batch)
    assert real == sum(lengths)
    assert padded == len(texts) * max(lengths)
    assert padding_share(real, padded) == pytest.approx(1 - sum(lengths) / (3 * max(lengths)))
    assert padding_share(0, 0) == 0.0


def test_mfu_is_six_flops_per_non_embedding_parameter_per_token():
    config = AutoConfig.for_model("bert", hidden_size=32, num_attention_heads=2, intermediate_size=37,
                                  vocab_size=99, max_position_embeddings=64, num_hidden_layers=2, num_labels=3)  # fmt: skip
    model = AutoModelForSequenceClassification.from_config(config)
    embeddings = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    assert embeddings == (99 + 64 + 2) * 32  # word, position, token-type tables
    n = non_embedding_parameters(model)
    assert n == sum(p.numel() for p in model.parameters()) - embeddings
    # 6 x N x tokens/s over the peak: N = 1e9 parameters at 1e4 tokens/s on a 1.2e14 FLOP/s device is 50%.
    assert model_flops_utilisation(10**9, 1e4, 1.2e14) == pytest.approx(0.5)
    if not torch.cuda.is_available():
        assert device_peak_flops() is None  # no MFU on a CPU


def test_training_flops_count_weights_and_attention_over_padded_tokens():
    # 6 x N, plus 6 x 2 x layers x seq_len x hidden: 6e6 + 12 x 6 x 40 x 384 per token.
    assert training_flops_per_token(10**6, 6, 40, 384) == 6e6 + 12 * 6 * 40 * 384
    row = {"padded_tokens": 4000, "train_samples": 100, "train_runtime": 2.0, "precision": "bf16",
           "non_embedding_params": 10**6, "n_layers": 6, "hidden_size": 384}  # fmt: skip
    assert achieved_flops(row) == pytest.approx(training_flops_per_token(10**6, 6, 40, 384) * 4000 / 2.0)
    row["achieved_flops"] = 1e11
    assert peak_share(row, {"fp32": 1e11, "bf16": 4e11}) == pytest.approx(0.25)  # against its own precision
    assert peak_share(row, None) is None  # no CPU peak (a GPU run)


def test_ratio_targets_follow_the_cpu_kind():
    found = {"ours/run_glue": 4.0, "ours/dynamic_grouped": 1.9, "ours/dynamic_grouped_bf16": 1.1}
    native = targets(found, native_bf16=True)["checks"]
    assert {k: c["met"] for k, c in native.items()} == {
        "ours/run_glue": False,  # 5x on native bf16
        "ours/dynamic_grouped": True,
        "ours/dynamic_grouped_bf16": False,
    }
    avx2 = targets(found, native_bf16=False)["checks"]
    assert {k: c["met"] for k, c in avx2.items()} == {"ours/run_glue": True, "ours/dynamic_grouped": True}


@pytest.mark.slow
def test_quick_mode_writes_every_configuration_and_column(tmp_path):
    from bench.run import all_configs

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)], cwd=REPO,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["configs"]) == set(all_configs())
    common = {"samples_per_s", "peak_rss_mb", "test_accuracy", "wall_s", "train_runtime", "train_cpu_s", "in_steps_s"}
    common |= {"precision", "achieved_flops", "peak_share"}
    text = {"real_tokens_per_s", "padded_tokens_per_s", "padding_share", "mfu"}
    for name, row in results["configs"].items():
        wanted = common | (text if not name.startswith("vision") else set())
        assert wanted <= set(row), (name, wanted - set(row))
        assert row["samples_per_s"] > 0 and row["peak_rss_mb"] > 100 and 0 <= row["test_accuracy"] <= 1
        assert row["precision"] in ("fp32", "bf16"), (name, row["precision"])
        if not torch.cuda.is_available():  # the share of this CPU's matmul peak, the CPU's MFU
            assert 0 < row["peak_share"] <= 1, (name, row["peak_share"])
    machine = results["machine"]
    assert "threads" in machine["cpu"] and machine["torch"] == torch.__version__
    if not torch.cuda.is_available():
        assert machine["peak_matmul_flops"]["fp32"] > 0 and machine["peak_matmul_flops"]["bf16"] > 0
    # conftest pins HF_FINETUNE_PRECISION=fp32 for ours; the plain --bf16 row asks for bf16 explicitly
    assert results["configs"]["dynamic_grouped_bf16"]["precision"] == "bf16"
    assert results["configs"]["dynamic_grouped"]["precision"] == "fp32"
    assert results["configs"]["ours"]["precision"] == os.environ.get("HF_FINETUNE_PRECISION", "fp32")
    run_glue = results["configs"]["run_glue"]
    assert run_glue["padded_tokens"] == 128 * results["sizes"]["train"]  # padded to max_length, one epoch
    assert 0 < results["configs"]["ours_lora"]["checkpoint_share_of_full"] < 0.02  # adapters + head only
    assert set(results["ratios"]) == {
        "ours/run_glue",
        "ours/dynamic",
        "ours/dynamic_grouped",
        "ours/dynamic_grouped_bf16",
        "vision_ours/vision_plain_aug",
        "vision_ours/vision_plain",
        "vision_ours_noaug/vision_plain",
    }
    assert set(results["targets"]["checks"]) <= set(results["ratios"]) and results["targets"]["checks"]
    table = (tmp_path / "results.md").read_text()
    assert table in done.stdout and "| (2b) plain Trainer" in table and "| (2c) plain Trainer" in table
    assert machine["cpu"] in table and "| precision |" in table and "| CPU peak |" in table
    assert "Targets on a CPU with" in table
