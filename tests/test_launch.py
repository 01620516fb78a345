"""The task entry point runs as a plain script and under `accelerate launch`, as the README says."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, csv_recipe_args, read_json

pytestmark = pytest.mark.slow

QUICK = [
    "--max_train_samples",
    "64",
    "--max_eval_samples",
    "32",
    "--max_steps",
    "4",
    "--eval_strategy",
    "no",
    "--save_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
]


def launch(prefix: list[str], out: Path, fortunes_csv) -> subprocess.CompletedProcess:
    argv = [
        *prefix,
        str(REPO / "tasks" / "text_classification.py"),
        *csv_recipe_args(fortunes_csv["train"]),
        "--output_dir",
        str(out),
        *QUICK,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_task_script_runs_with_python(tmp_path, fortunes_csv):
    result = launch([sys.executable], tmp_path / "py", fortunes_csv)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(tmp_path / "py" / "run_complete.json")["metrics"]["validation"]["accuracy"] >= 0


def test_task_script_runs_under_accelerate_launch(tmp_path, fortunes_csv):
    accelerate = Path(sys.executable).parent / "accelerate"
    result = launch(
        [str(accelerate), "launch", "--config_file", str(REPO / "accelerate_configs" / "cpu.yaml")],
        tmp_path / "acc",
        fortunes_csv,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "acc" / "model.safetensors").is_file()
    assert "model saved to" in result.stdout


def test_task_script_bad_input_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tasks" / "text_classification.py"),
            "--config",
            "fortunes_topics",
            "--train_file",
            str(tmp_path / "missing.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")
