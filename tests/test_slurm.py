"""The SLURM template (`slurm/train.sbatch`), run by bash with stand-ins for `srun` and `scontrol` on PATH.

No SLURM controller exists here, so the two commands the script calls are small Python scripts:
- `scontrol show hostnames` prints the job's node list; `scontrol requeue ID` records the requeue.
- `srun` records its command, then (when asked) runs it once per node with SLURM_NODEID set, in
  its own process group, and, once a complete checkpoint exists, sends SIGTERM to every process
  of the step: what `--signal=TERM@120` does before the time limit.
The first test checks the commands for 2 nodes without running them; the second really trains on
one node, is stopped, requeues itself, and its second start (what SLURM runs after the requeue)
resumes from the checkpoint and finishes.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, csv_recipe_args, read_json

TEMPLATE = REPO / "slurm" / "train.sbatch"

SRUN = textwrap.dedent(
    """
    #!PYTHON
    import json, os, signal, subprocess, sys, time
    from pathlib import Path
    argv = sys.argv[1:]
    while argv and argv[0].startswith("--"):  # srun's own options
        argv = argv[1:]
    with open(os.environ["FAKE_SLURM_LOG"], "a") as log:
        log.write(json.dumps({"srun": argv, "nodes": os.environ["SLURM_NNODES"]}) + "\\n")
    if not os.environ.get("FAKE_SRUN_RUN"):
        sys.exit(0)
    tasks = [subprocess.Popen(argv, env={**os.environ, "SLURM_NODEID": str(node), "SLURM_PROCID": str(node)},
                              start_new_session=True) for node in range(int(os.environ["SLURM_NNODES"]))]
    sentinel = os.environ.get("FAKE_SLURM_TERM_WHEN")
    while sentinel and any(t.poll() is None for t in tasks):
        if Path(sentinel).is_file():  # the time limit is near: SIGTERM to every process of the step
            for t in tasks:
                os.killpg(t.pid, signal.SIGTERM)
            break
        time.sleep(0.05)
    sys.exit(max(t.wait() for t in tasks))
    """
).lstrip()

SCONTROL = textwrap.dedent(
    """
    #!PYTHON
    import json, os, sys
    if sys.argv[1:3] == ["show", "hostnames"]:
        print("\\n".join(os.environ["FAKE_SLURM_NODES"].split(",")))
    else:
        with open(os.environ["FAKE_SLURM_LOG"], "a") as log:
            log.write(json.dumps({"scontrol": sys.argv[1:]}) + "\\n")
    """
).lstrip()


@pytest.fixture
def slurm(tmp_path) -> dict:
    """A PATH with the stand-ins first, and the job's environment; returns the env and the log path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text.replace("PYTHON", sys.executable))
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "slurm.jsonl"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "FAKE_SLURM_LOG": str(log),
        "FAKE_SLURM_NODES": "node-a,node-b",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "hf-finetune",
        "SLURM_JOB_NODELIST": "node-[a-b]",
        "SLURM_NNODES": "2",
    }
    return {"env": env, "log": log}


def entries(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def sbatch(env: dict, *options: str) -> subprocess.CompletedProcess:
    """What SLURM runs on the first node of the allocation: the batch script, with the job's options."""
    return subprocess.run(
        ["bash", str(TEMPLATE), *options], env=env, cwd=REPO, capture_output=True, text=True, timeout=900
    )


def test_the_template_asks_for_a_signal_before_the_limit_and_requeue():
    directives = [line.split(None, 1)[1] for line in TEMPLATE.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "--requeue" in directives
    signal = next(d for d in directives if d.startswith("--signal="))
    assert re.fullmatch(r"--signal=(B:)?TERM@\d+", signal) and int(signal.split("@")[1]) >= 60
    assert "--ntasks-per-node=1" in directives  # one accelerate launch per node


def test_every_node_runs_accelerate_launch_with_its_rank_and_the_main_address(slurm, tmp_path):
    result = sbatch({**slurm["env"], "GPUS_PER_NODE": "4"}, "--config", "sst2", "--learning_rate", "3e-5")
    assert result.returncode == 0, result.stderr
    (call,) = [e for e in entries(slurm["log"]) if "srun" in e]
    assert call["srun"][:2] == ["bash", "-c"]
    # The command each node's task runs, expanded as bash on that node would (SLURM_NODEID 0 and 1).
    for node in (0, 1):
        env = {**slurm["env"], "GPUS_PER_NODE": "4", "SLURM_NODEID": str(node), "MAIN_PROCESS_IP": "node-a",
               "MAIN_PROCESS_PORT": "29500", "CONFIG_FILE": "accelerate_configs/multi_node.yaml",
               "OUTPUT_DIR": "outputs/slurm-hf-finetune"}  # fmt: skip
        script = call["srun"][2].replace("exec accelerate", "echo accelerate")
        shown = subprocess.run(["bash", "-c", script, *call["srun"][3:]], env=env, capture_output=True, text=True)
        words = shlex.split(shown.stdout)
        assert words[:4] == ["accelerate", "launch", "--config_file", "accelerate_configs/multi_node.yaml"]
        options = dict(zip(words[4:14:2], words[5:14:2], strict=True))
        assert options == {
            "--num_machines": "2", "--num_processes": "8", "--machine_rank": str(node),
            "--main_process_ip": "node-a", "--main_process_port": "29500",
        }  # fmt: skip
        assert words[14:] == ["--module", "hf_finetune.cli", "train", "--output_dir", "outputs/slurm-hf-finetune",
                              "--resume", "auto", "--config", "sst2", "--learning_rate", "3e-5"]  # fmt: skip
    assert "main node-a:29500" in result.stdout
    assert not [e for e in entries(slurm["log"]) if "scontrol" in e]  # finished: no requeue


# Steps to train: the stand-in sends SIGTERM once checkpoint-2 is complete (polling every 0.05 s) and the run
# stops after the step it is in. The signal must land before the run ends: if it comes after, the job exits 143
# (accelerate's launcher is killed on its way out) without a stop to resume from. 14 steps after checkpoint-2,
# with a save every 2 (about 0.25 s each), leave 2-3 s; 12 steps and 0.5 s polling missed once at load 5.
MAX_STEPS = 16


@pytest.mark.slow
def test_a_job_stopped_before_its_time_limit_requeues_itself_and_the_second_start_resumes(
    slurm, tmp_path, fortunes_csv
):
    out = tmp_path / "shared" / "model"
    env = {
        **slurm["env"], "SLURM_NNODES": "1", "FAKE_SLURM_NODES": "127.0.0.1", "FAKE_SRUN_RUN": "1",
        "GPUS_PER_NODE": "1", "CONFIG_FILE": str(REPO / "accelerate_configs" / "cpu.yaml"),
        "OUTPUT_DIR": str(out), "OMP_NUM_THREADS": "2",
    }  # fmt: skip
    recipe = [
        *csv_recipe_args(fortunes_csv["train"]), "--max_train_samples", "48", "--max_eval_samples", "16",
        "--max_steps", str(MAX_STEPS), "--per_device_train_batch_size", "4", "--max_seq_length", "32",
        "--eval_strategy", "no", "--save_strategy", "steps", "--save_steps", "2", "--load_best_model_at_end", "false",
        "--logging_steps", "1",
    ]  # fmt: skip
    first = sbatch({**env, "FAKE_SLURM_TERM_WHEN": str(out / "checkpoint-2" / "checkpoint_complete.json")}, *recipe)
    assert first.returncode == 143, first.stderr[-3000:]
    # The run's own closing line, not the signal handler's "SIGTERM received" notice: 1 run in 5 here lacked the
    # notice although the handler had set its flag and the run stopped by it (not understood yet; see the note).
    assert "stopped by SIGTERM at step" in first.stderr and "requeueing job 4242" in first.stdout
    assert [e["scontrol"] for e in entries(slurm["log"]) if "scontrol" in e] == [["requeue", "4242"]]
    assert not (out / "run_complete.json").exists()
    stopped_at = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert 2 <= stopped_at < MAX_STEPS

    second = sbatch({**env, "SLURM_RESTART_COUNT": "1"}, *recipe)  # what SLURM runs after the requeue
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {out / f'checkpoint-{stopped_at}'}" in second.stderr
    assert "restart 1" in second.stdout
    state = read_json(out / "trainer_state.json")
    assert state["global_step"] == MAX_STEPS and (out / "run_complete.json").is_file()
    assert [e["step"] for e in state["log_history"] if "loss" in e] == list(range(1, MAX_STEPS + 1))
    assert len([e for e in entries(slurm["log"]) if "scontrol" in e]) == 1  # finished: not requeued again
