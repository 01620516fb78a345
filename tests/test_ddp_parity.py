"""The same recipe, global batch and seed under `cpu.yaml` (1 process) and `cpu_ddp.yaml`
(2 processes, real DDP over gloo) reach the same model quality, and the 2-process run
leaves the same output folder, written and logged once.

With sequential batches the 2-process run sees the same global batches as the 1-process run
(rank 0 takes the first half of each, rank 1 the second), and DDP's gradient average over two
half-batches equals the single process's mean over the whole batch. What still differs is
dropout (each rank draws its own masks) and float summation order, so the metrics agree
within a tolerance rather than bit for bit. Measured (320 texts, 2 epochs, 200 test texts):
test accuracy 0.685 vs 0.705, macro F1 0.601 vs 0.623, loss 1.079 vs 1.072. Before the
loss-scaling fix in `hf_finetune.engine.trainer` the 2-process loss read 2.15: the loss check catches that.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, csv_recipe_args, read_json

pytestmark = pytest.mark.slow

# On 200 held-out texts one text is 0.005 of accuracy: 0.05 is ten texts. Loss: relative.
METRIC_TOLERANCE, LOSS_TOLERANCE = 0.05, 0.05
GLOBAL_BATCH = 16


def launch(config: str, out: Path, fortunes_csv, hub_log: Path) -> subprocess.CompletedProcess:
    processes = 2 if config == "cpu_ddp" else 1
    argv = [
        str(Path(sys.executable).parent / "accelerate"), "launch",
        "--config_file", str(REPO / "accelerate_configs" / f"{config}.yaml"),
        str(FIXTURES / "train_with_recorded_hub.py"), str(hub_log),
        *csv_recipe_args(fortunes_csv["train"]), "--test_file", str(fortunes_csv["test"]),
        "--max_train_samples", "320", "--num_train_epochs", "2", "--learning_rate", "1e-4",
        "--per_device_train_batch_size", str(GLOBAL_BATCH // processes),
        "--train_sampling_strategy", "sequential", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--push_to_hub", "true", "--hub_model_id", "someone/parity",
        "--output_dir", str(out),
    ]  # fmt: skip
    # Each process gets its share of the 2 cores: the single process both, DDP ranks one each.
    env = {**os.environ, "OMP_NUM_THREADS": str(2 // processes), "HF_TOKEN": "hf_ParityTestFakeToken"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=1200, cwd=REPO, env=env)


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "runs" not in p.parts}


def test_one_and_two_processes_reach_the_same_metrics_and_write_once(tmp_path, fortunes_csv):
    runs = {}
    for config in ("cpu", "cpu_ddp"):
        out, hub_log = tmp_path / config, tmp_path / f"{config}-hub.jsonl"
        result = launch(config, out, fortunes_csv, hub_log)
        assert result.returncode == 0, result.stderr[-4000:]
        pushes = [json.loads(line) for line in hub_log.read_text().splitlines() if '"upload_folder"' in line]
        runs[config] = (out, result, pushes)

    (single, single_result, single_pushes), (ddp, ddp_result, ddp_pushes) = runs["cpu"], runs["cpu_ddp"]
    assert "2 process(es)" in ddp_result.stderr and "1 process(es)" in single_result.stderr
    # Same global batch: the same number of optimizer steps (320 / 16 x 2 epochs).
    assert read_json(single / "trainer_state.json")["global_step"] == 40
    assert read_json(ddp / "trainer_state.json")["global_step"] == 40

    single_metrics, ddp_metrics = (read_json(o / "metrics.json")["metrics"] for o in (single, ddp))
    for split in ("validation", "test"):
        one, two = single_metrics[split], ddp_metrics[split]
        for key in ("accuracy", "macro_f1"):
            assert abs(one[key] - two[key]) <= METRIC_TOLERANCE, f"{split} {key}: 1 process {one[key]}, 2: {two[key]}"
        assert abs(one["loss"] - two["loss"]) <= LOSS_TOLERANCE * one["loss"], (
            f"{split} loss {one['loss']}, {two['loss']}"
        )
    majority = read_json(single / "metrics.json")["majority_baseline"]
    assert ddp_metrics["test"]["accuracy"] > majority + 0.1, "the 2-process model learned"

    # Written once, by the main process: the same files as the single-process run, logged once, pushed once.
    assert files_in(ddp) == files_in(single)
    assert ddp_result.stderr.count("[hf_finetune] data ") == 1
    assert ddp_result.stdout.count("model saved to") == 1
    assert len(single_pushes) == 1 and len(ddp_pushes) == 1
    assert ddp_pushes[0]["rank"] == 0 and ddp_pushes[0]["repo_id"] == "someone/parity"
