"""Frozen and gradually unfrozen blocks under real 2-process DDP (`accelerate launch`, gloo on CPU).

DDP registers only parameters that require grad when it wraps the model, so a block
unfrozen later by flipping `requires_grad` would never be all-reduced and the ranks would
silently drift apart. This run freezes the bottom two blocks and unfreezes the rest every
two steps; afterwards both ranks must hold identical weights, the frozen blocks must be
bit-identical to the checkpoint, and the blocks opened mid-run must have moved.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, csv_recipe_args, read_json
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

FROZEN_PREFIXES = ("bert.embeddings.", "bert.encoder.layer.0.", "bert.encoder.layer.1.")


def test_ddp_freeze_bottom_and_gradual_unfreeze_keep_ranks_identical(tmp_path, fortunes_csv, minilm_dir):
    out, dumps = tmp_path / "model", tmp_path / "ranks"
    argv = [
        str(Path(sys.executable).parent / "accelerate"), "launch",
        "--config_file", str(REPO / "accelerate_configs" / "cpu_ddp.yaml"),
        str(FIXTURES / "train_and_dump_rank_weights.py"), str(dumps),
        *csv_recipe_args(fortunes_csv["train"]),
        "--strategy", "freeze_bottom+gradual_unfreeze", "--freeze_num_layers", "2",
        "--gradual_unfreeze_every_steps", "2",
        "--max_train_samples", "96", "--max_eval_samples", "32", "--per_device_train_batch_size", "8",
        "--num_train_epochs", "2",  # 96 / (8 x 2 processes) = 6 steps per epoch: 12 steps, 5 stages open
        "--learning_rate", "1e-4", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--output_dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "2 process(es)" in result.stderr
    # Each process saw half of every global batch: a process training alone would take 24 steps.
    assert read_json(out / "trainer_state.json")["global_step"] == 12
    assert result.stderr.count("[hf_finetune] data ") == 1, "only the main process logs"

    rank0, rank1 = load_file(dumps / "rank0.safetensors"), load_file(dumps / "rank1.safetensors")
    assert rank0.keys() == rank1.keys()
    differing = [name for name in rank0 if not rank0[name].equal(rank1[name])]
    assert not differing, f"ranks drifted apart: {differing[:5]}"

    checkpoint = load_file(Path(minilm_dir) / "model.safetensors")
    frozen = [name for name in rank0 if name.startswith(FROZEN_PREFIXES)]
    assert len(frozen) > 30
    for name in frozen:
        assert rank0[name].equal(checkpoint[name.removeprefix("bert.")]), f"{name} moved although frozen"
    # Opened at steps 2, 4, 6, 8: blocks 5, 4, 3, 2 all trained for at least four steps.
    for layer in (2, 5):
        name = f"bert.encoder.layer.{layer}.attention.self.query.weight"
        assert not rank0[name].equal(checkpoint[name.removeprefix("bert.")]), f"{name} never trained"
    assert read_json(out / "run_complete.json")["metrics"]["validation"]["accuracy"] >= 0
