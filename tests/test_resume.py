"""Preemption, for real: a training subprocess is SIGKILLed at a chosen step (or in the middle of
writing a checkpoint), the same command runs again, and the run ends with weights and metrics
bit-identical to a run that was never interrupted. SIGTERM and Ctrl-C stop a run after the
current step with a complete checkpoint, on one process and on two (DDP, no deadlock, even with
the SIGTERM delivered twice: by the test to every process and by torchrun to its workers).

Exactness holds on CPU with `dataloader_num_workers=0`, random batch augmentation and mixup included (they
draw from torch's global generator, whose state the checkpoint carries): the checkpoint carries the
optimizer, scheduler, RNG states, the weights' EMA and the data position, and Trainer skips the batches
already seen.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, csv_recipe_args, read_json
from safetensors.torch import load_file

from hf_finetune.engine.checkpoints import CHECKPOINT_COMPLETE, is_complete, newest_complete

pytestmark = pytest.mark.slow

TASK = str(REPO / "tasks" / "text_classification.py")
CLI = ["-m", "hf_finetune.cli"]  # `hf-finetune`, run by this interpreter
# 48 texts in batches of 8: 6 steps per epoch, 12 in all; checkpoints every 2 steps.
SHORT = ["--max_train_samples", "48", "--max_eval_samples", "32", "--per_device_train_batch_size", "8",
         "--num_train_epochs", "2", "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "steps",
         "--eval_steps", "2", "--learning_rate", "1e-4", "--dataloader_num_workers", "0", "--logging_steps", "1"]  # fmt: skip
STRATEGIES = {
    "full": [],
    "freeze_bottom+gradual_unfreeze": [
        "--strategy",
        "freeze_bottom+gradual_unfreeze",
        "--freeze_num_layers",
        "2",
        "--gradual_unfreeze_every_steps",
        "3",
    ],  # fmt: skip
    "lora": ["--strategy", "lora", "--learning_rate", "1e-3"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
REGULARISED = ["--augmentation", "crop_flip", "--random_erasing", "0.25", "--mixup_alpha", "0.8", "--cutmix_alpha", "1.0",
               "--label_smoothing_factor", "0.1", "--ema_decay", "0.9", "--save_total_limit", "10"]  # fmt: skip


def train(argv: list[str], *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=900, cwd=REPO, env=ENV)


def weights(folder: Path) -> dict:
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(folder / name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference run for a command, trained once per module: cases that kill the same command at
    different moments compare against the same uninterrupted run."""
    finished: dict[tuple, Path] = {}

    def run(common: list[str]) -> Path:
        if tuple(common) not in finished:
            out = tmp_path_factory.mktemp("uninterrupted")
            reference = train([*CLI, *common, "--output_dir", str(out)], sys.executable)
            assert reference.returncode == 0, reference.stderr[-3000:]
            finished[tuple(common)] = out
        return finished[tuple(common)]

    return run


@pytest.mark.parametrize(
    ("strategy", "kill_at", "mode"),
    [
        ("full", 8, "after_save"),  # mid-epoch 2: the data order of epoch 2 must not depend on epoch 1
        ("full", 4, "during_save"),  # checkpoint-4 half written: resumes from checkpoint-2, mid-epoch 1
        ("freeze_bottom+gradual_unfreeze", 4, "after_save"),  # between two unfreezing stages
        ("lora", 10, "after_save"),
        ("vit", 4, "after_save"),  # a ViT saves its weights under legacy names: resume must still load them
        # random batch augmentation, mixup/cutmix, random erasing and the weights' EMA: all resume exactly
        ("vit_regularised", 4, "after_save"),
    ],
)
def test_killed_run_resumes_to_identical_weights_and_metrics(strategy, kill_at, mode, tmp_path, request, uninterrupted):
    if strategy.startswith("vit"):  # real digit images
        data = ["--config", "fashion_mnist_target", "--model_name_or_path", str(request.getfixturevalue("vit_init_dir")),
                "--ignore_mismatched_sizes", "true", "--dataset_name", str(request.getfixturevalue("digit_folder"))]  # fmt: skip
        data += ["--augmentation", "none"] if strategy == "vit" else REGULARISED
    else:
        data = [*csv_recipe_args(request.getfixturevalue("fortunes_csv")["train"]), *STRATEGIES[strategy]]
    common = ["train", *data, *SHORT]
    whole, killed = uninterrupted(common), tmp_path / "killed"

    dying = train([str(FIXTURES / "train_until_killed.py"), str(kill_at), mode, *common[1:], "--output_dir",
                   str(killed)], sys.executable)  # fmt: skip
    assert dying.returncode == -signal.SIGKILL
    assert not (killed / "run_complete.json").exists()
    if mode == "during_save":
        assert (killed / f"checkpoint-{kill_at}").is_dir() and not is_complete(killed / f"checkpoint-{kill_at}")
    expected = killed / f"checkpoint-{kill_at if mode == 'after_save' else kill_at - 2}"
    assert newest_complete(killed) == expected

    resumed = train([*CLI, *common, "--output_dir", str(killed)], sys.executable)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {expected}" in resumed.stderr
    if mode == "during_save":
        assert "removed incomplete checkpoint" in resumed.stderr

    if strategy == "vit_regularised":  # the checkpoint carried the average; the saved model is the average
        assert (expected / "ema.safetensors").is_file()
        ema, reference = (
            load_file(expected / "ema.safetensors"),
            load_file(whole / f"checkpoint-{kill_at}" / "ema.safetensors"),
        )
        assert all(ema[k].equal(reference[k]) for k in reference)
    a, b = weights(whole), weights(killed)
    assert a.keys() == b.keys()
    assert [k for k in a if not a[k].equal(b[k])] == [], "resumed weights differ from the uninterrupted run"
    assert read_json(killed / "metrics.json")["metrics"] == read_json(whole / "metrics.json")["metrics"]
    history = [entry for entry in read_json(killed / "trainer_state.json")["log_history"] if "loss" in entry]
    assert history == [entry for entry in read_json(whole / "trainer_state.json")["log_history"] if "loss" in entry]


def wait_for_complete_checkpoint(folder: Path, process: subprocess.Popen, timeout: float = 600) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = newest_complete(folder)
        if found is not None:
            return found
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


LONG = ["--max_train_samples", "480", "--per_device_train_batch_size", "8", "--num_train_epochs", "3",
        "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no", "--load_best_model_at_end", "false",
        "--max_eval_samples", "32"]  # fmt: skip


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(sig, code, tmp_path, fortunes_csv):
    out = tmp_path / "run"
    argv = [sys.executable, TASK, *csv_recipe_args(fortunes_csv["train"]), *LONG, "--output_dir", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
    first = wait_for_complete_checkpoint(out, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == code, stderr[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith("error: "))
    assert line.startswith(f"error: stopped by {sig.name} at step ") and "Resume by running the same command" in line
    stopped = newest_complete(out)
    assert stopped is not None and stopped != first and f"checkpoint saved to {stopped}" in line
    assert (stopped / CHECKPOINT_COMPLETE).is_file() and not (out / "run_complete.json").exists()


def test_ctrl_c_twice_quits_at_once(tmp_path, fortunes_csv):
    out = tmp_path / "run"
    argv = [sys.executable, TASK, *csv_recipe_args(fortunes_csv["train"]), *LONG, "--output_dir", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
    wait_for_complete_checkpoint(out, process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130


def test_sigterm_stops_both_ddp_processes_at_the_same_step(tmp_path, fortunes_csv):
    """SLURM sends SIGTERM to every process of the job: here the whole process group of the launcher."""
    out = tmp_path / "ddp"
    argv = [str(Path(sys.executable).parent / "accelerate"), "launch",
            "--config_file", str(REPO / "accelerate_configs" / "cpu_ddp.yaml"), TASK,
            *csv_recipe_args(fortunes_csv["train"]), *LONG, "--output_dir", str(out)]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV, start_new_session=True
    )
    first = wait_for_complete_checkpoint(out, process)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)  # a deadlocked all-reduce would hang here
    assert process.returncode != 0
    # One line per process (a progress bar may share its line), the same step on both.
    steps = re.findall(r"error: stopped by SIGTERM at step (\d+) ", stderr)
    assert len(steps) == 2 and steps[0] == steps[1], stderr[-3000:]
    stopped = newest_complete(out)
    assert stopped is not None and stopped != first and not (out / "run_complete.json").exists()


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, fortunes_csv):
    """A file-size limit (RLIMIT_FSIZE, what a full disk or a quota looks like to the writer) hits the
    second checkpoint: one line naming the intact first one, which the next run resumes from."""
    import resource

    common = [TASK, *csv_recipe_args(fortunes_csv["train"]), *SHORT, "--output_dir", str(tmp_path / "run")]
    first = train([str(FIXTURES / "train_until_killed.py"), "2", "after_save", *common[1:]], sys.executable)
    assert first.returncode == -signal.SIGKILL and newest_complete(tmp_path / "run").name == "checkpoint-2"

    def limit_file_size():  # smaller than the 90 MB model.safetensors every checkpoint holds
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000_000, 50_000_000))

    full = subprocess.run([sys.executable, *common], capture_output=True, text=True, timeout=900, cwd=REPO, env=ENV,
                          preexec_fn=limit_file_size)  # fmt: skip
    assert full.returncode == 2, full.stderr[-3000:]
    line = next(line for line in full.stderr.splitlines() if line.startswith("error: "))
    assert line.startswith("error: could not write checkpoint-4 (") and "Traceback" not in full.stderr
    assert f"the newest complete checkpoint, {tmp_path / 'run' / 'checkpoint-2'}, is intact" in line
    assert newest_complete(tmp_path / "run").name == "checkpoint-2"

    again = train(common, sys.executable)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "removed incomplete checkpoint" in again.stderr and "resuming from" in again.stderr
    assert read_json(tmp_path / "run" / "run_complete.json")["metrics"]
