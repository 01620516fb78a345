"""bf16 autocast trains on a CPU; a loss that becomes NaN stops the run with exit code 3 and a line naming the step and the
newest checkpoint, instead of training on with NaN weights (Trainer alone logs such a loss as 0
and finishes "successfully").

The divergence is real: a learning rate of 1e30 makes the first Adam update push every weight
to about 1e30, and the next forward pass overflows float32.
"""

import math

import pytest
from conftest import csv_recipe_args, read_json, run_cli
from safetensors import safe_open

pytestmark = pytest.mark.slow

QUICK = ["--max_train_samples", "64", "--max_eval_samples", "32", "--per_device_train_batch_size", "8",
         "--eval_strategy", "no", "--load_best_model_at_end", "false"]  # fmt: skip


def test_bf16_autocast_trains_on_cpu_and_saves_fp32_weights(tmp_path, fortunes_csv, capsys):
    out = tmp_path / "bf16"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--output_dir", str(out), "--bf16", "true",
            "--max_steps", "4", "--save_strategy", "no", *QUICK]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err[-2000:]
    summary = read_json(out / "metrics.json")
    assert summary["hardware"].endswith(", bf16"), summary["hardware"]  # what the Accelerator ran
    assert all(math.isfinite(v) for v in summary["metrics"]["validation"].values())
    with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}
    assert {str(d) for d in dtypes} == {"torch.float32"}, "autocast keeps the master weights in fp32"


def test_nan_loss_stops_the_run_with_exit_code_3_naming_step_and_checkpoint(tmp_path, fortunes_csv, capsys):
    out = tmp_path / "diverged"
    argv = [
        "train", *csv_recipe_args(fortunes_csv["train"]), "--output_dir", str(out),
        "--learning_rate", "1e30", "--warmup_steps", "0", "--max_steps", "6", "--logging_steps", "1",
        "--save_strategy", "steps", "--save_steps", "1", *QUICK,
    ]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 3
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "loss became nan at step 2" in errors[0]
    assert f"{out / 'checkpoint-1'}" in errors[0] and "--learning_rate" in errors[0]
    # It stopped there: no later checkpoint, and the folder is not mistaken for a finished model.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (out / "run_complete.json").exists() and not (out / "model.safetensors").exists()
