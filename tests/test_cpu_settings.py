"""What importing hf_finetune sets for CPU training (measured reasons in hf_finetune/__init__.py)."""

import os
import subprocess
import sys

import pytest

PROBE = "import hf_finetune, os, torch; print(os.environ.get('OMP_WAIT_POLICY')); print(torch.tensor([1e-40]).item())"


def probe(**env_changes: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LOCAL_WORLD_SIZE")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(
    ("env", "policy"),
    [
        ({}, "None"),  # alone: OpenMP's default short spin (PASSIVE was 5-9% slower per step)
        ({"LOCAL_WORLD_SIZE": "1"}, "None"),
        ({"LOCAL_WORLD_SIZE": "2"}, "PASSIVE"),  # processes share the cores: waiting threads must sleep
        ({"LOCAL_WORLD_SIZE": "2", "OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),  # the user's choice wins
    ],
)
def test_wait_policy_is_passive_only_when_processes_share_the_machine(env, policy):
    assert probe(**env)[0] == policy


def test_denormal_floats_are_flushed_to_zero():
    assert float(probe()[1]) == 0.0
