"""The benchmark harness: token and padding counts on a constructed batch, the MFU formula, and a
quick run of every configuration that writes every column. No wall-clock assertion anywhere."""

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
)

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
    text = {"real_tokens_per_s", "padded_tokens_per_s", "padding_share", "mfu"}
    for name, row in results["configs"].items():
        wanted = common | (text if not name.startswith("vision") else set())
        assert wanted <= set(row), (name, wanted - set(row))
        assert row["samples_per_s"] > 0 and row["peak_rss_mb"] > 100 and 0 <= row["test_accuracy"] <= 1
    run_glue = results["configs"]["run_glue"]
    assert run_glue["padded_tokens"] == 128 * results["sizes"]["train"]  # padded to max_length, one epoch
    assert 0 < results["configs"]["ours_lora"]["checkpoint_share_of_full"] < 0.02  # adapters + head only
    assert set(results["ratios"]) == {
        "ours/run_glue",
        "ours/dynamic",
        "ours/dynamic_grouped",
        "vision_ours/vision_plain_aug",
        "vision_ours/vision_plain",
        "vision_ours_noaug/vision_plain",
    }
    table = (tmp_path / "results.md").read_text()
    assert table in done.stdout and "| (2b) plain Trainer" in table
