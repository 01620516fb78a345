"""Two "machines" x 1 process, really launched: `accelerate launch --num_machines 2 --machine_rank 0|1
--main_process_ip 127.0.0.1 --main_process_port P`, through `multi_node_cpu.yaml` (the CPU variant of
`multi_node.yaml`: the same launcher path, torchrun with a static rendezvous, gloo instead of NCCL).

Each "machine" is its own `accelerate launch`, as on a cluster; both use 127.0.0.1. The parity
recipe (sequential batches, a global batch of 16) splits each batch across the two ranks: the run
takes the steps a single process with batch 16 takes, every rank ends with bit-identical weights
(DDP all-reduced every gradient), and only the global main process (machine 0) writes the folder.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, csv_recipe_args, read_json
from safetensors.torch import load_file

from hf_finetune.training.run_lock import lock_paths

pytestmark = pytest.mark.slow

GLOBAL_BATCH, MACHINES, SAMPLES = 16, 2, 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_machines(out: Path, dumps: Path, train_file: Path) -> list[subprocess.CompletedProcess]:
    """Start both machines at once (they wait for each other at the rendezvous); their results by rank."""
    port = str(free_port())
    argv = [
        *csv_recipe_args(train_file),
        "--max_train_samples", str(SAMPLES), "--max_eval_samples", "32", "--num_train_epochs", "1",
        "--learning_rate", "1e-4", "--per_device_train_batch_size", str(GLOBAL_BATCH // MACHINES),
        "--train_sampling_strategy", "sequential", "--eval_strategy", "no", "--save_strategy", "no",
        "--load_best_model_at_end", "false", "--output_dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    machines = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "accelerate"),
                "launch",
                "--config_file",
                str(REPO / "accelerate_configs" / "multi_node_cpu.yaml"),
                "--num_machines",
                str(MACHINES),
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                port,
                str(FIXTURES / "train_and_dump_rank_weights.py"),
                str(dumps),
                *argv,
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )  # fmt: skip
        for rank in range(MACHINES)
    ]
    results = []
    for machine in machines:
        stdout, stderr = machine.communicate(timeout=900)
        results.append(subprocess.CompletedProcess(machine.args, machine.returncode, stdout, stderr))
    return results


def test_two_machines_split_the_steps_end_identical_and_write_one_folder(tmp_path, fortunes_csv):
    out, dumps = tmp_path / "model", tmp_path / "dumps"
    main, other = launch_machines(out, dumps, fortunes_csv["train"])
    assert main.returncode == 0, main.stderr[-4000:]
    assert other.returncode == 0, other.stderr[-4000:]

    # One training over both machines: 2 processes, effective batch 16, 64 / 16 = 4 steps.
    assert "effective batch 16 = 8 per device x 2 process(es)" in main.stderr
    assert read_json(out / "trainer_state.json")["global_step"] == SAMPLES // GLOBAL_BATCH
    assert "2 processes on CPU" in read_json(out / "metrics.json")["hardware"]

    ranks = [load_file(str(dumps / f"rank{rank}.safetensors")) for rank in range(MACHINES)]
    assert ranks[0].keys() == ranks[1].keys() and len(ranks[0]) > 100
    different = [name for name in ranks[0] if not ranks[0][name].equal(ranks[1][name])]
    assert different == [], f"ranks differ in {different[:3]}"
    saved = load_file(str(out / "model.safetensors"))
    assert saved["classifier.weight"].equal(ranks[1]["classifier.weight"]), "machine 1 holds the saved model"

    # Written and reported once, by machine 0; machine 1 logs and writes nothing of its own.
    assert main.stdout.count("model saved to") == 1 and "model saved to" not in other.stdout
    assert "[hf_finetune] data " in main.stderr and "[hf_finetune] data " not in other.stderr
    assert (out / "run_complete.json").is_file()
    lock_file, note = lock_paths(out)
    assert lock_file.is_file() and not note.exists()  # the run held the folder's lock and released it


def test_a_held_folder_stops_both_machines_with_one_error_line(holder, tmp_path, fortunes_csv):
    """The main process takes the lock for every rank and tells them it was refused: both machines stop
    with the same one-line error (worker exit code 2), none hangs waiting for the other, nothing is written."""
    process, out = holder  # a second process holds tmp_path/model's lock (conftest.holder)
    results = launch_machines(out, tmp_path / "dumps", fortunes_csv["train"])
    for result in results:
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "in use by another run" in errors[0], result.stderr[-3000:]
        assert f"process {process.pid}" in errors[0]
        # torchrun's agent reports the failed worker with its own launcher traceback; the worker's exit code
        # is 2 (bad input) and no frame of ours is in any traceback.
        assert "exitcode  : 2" in result.stderr, result.stderr[-3000:]
        assert f'File "{REPO / "hf_finetune"}' not in result.stderr
    assert not out.exists()
