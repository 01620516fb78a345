"""Checkpoints to the Hub while training (`hub_strategy`) and `resume: hub` on a new machine.

Only `HfApi` is replaced (at `hf_finetune.training.hub.HfApi`, the one seam to the network) by a
stand-in that keeps each repo as a real folder: `upload_folder` commits files into it (honouring
`path_in_repo`-less uploads and `delete_patterns`, as one commit does), `list_repo_files` and
`snapshot_download` read it back. Training, checkpoints, SIGTERM and resuming are real.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import httpx
import huggingface_hub
import pytest
from conftest import csv_recipe_args, read_json, run_cli
from huggingface_hub.errors import RepositoryNotFoundError
from transformers import TrainerCallback

from hf_finetune.engine.checkpoints import CHECKPOINT_COMPLETE, is_complete
from hf_finetune.errors import UserError
from hf_finetune.recipes import parse_config
from hf_finetune.training.hub_checkpoints import PushCheckpoints, stage_checkpoint
from hf_finetune.training.run import run

FAKE_TOKEN = "hf_FakeCheckpointTokenZ8q2Lw5Rt7Yp"
REPO_ID = "me/fortunes-ckpt"


class FolderHub:
    """The Hub as folders: repo id -> a folder with the repo's files; every commit is recorded."""

    def __init__(self, root: Path):
        self.root, self.commits, self.created = root, [], []
        hub = self

        class FolderHfApi:
            def __init__(self, token=None, **kwargs):
                assert token in (None, FAKE_TOKEN)

            def create_repo(self, repo_id, *, private=None, exist_ok=False, **kwargs):
                hub.created.append({"repo_id": repo_id, "private": private})
                (hub.root / repo_id).mkdir(parents=True, exist_ok=True)
                return f"https://huggingface.co/{repo_id}"

            def repo_info(self, repo_id, **kwargs):
                return SimpleNamespace(id=repo_id, private=hub.created[0]["private"])

            def create_branch(self, repo_id, *, branch, exist_ok=False, **kwargs):
                pass

            def upload_folder(self, *, folder_path, repo_id, delete_patterns=None, commit_message=None, **kwargs):
                repo, folder = hub.root / repo_id, Path(folder_path)
                added = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
                for name in hub.files(repo_id):
                    if name not in added and any(fnmatch.fnmatch(name, pat) for pat in delete_patterns or []):
                        (repo / name).unlink()
                for name in added:
                    (repo / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / name, repo / name)
                hub.commits.append({"message": commit_message, "files": added, "kwargs": kwargs})

            def list_repo_files(self, repo_id, revision=None, **kwargs):
                if not (hub.root / repo_id).is_dir():
                    url = f"https://huggingface.co/api/models/{repo_id}"
                    response = httpx.Response(404, request=httpx.Request("GET", url))
                    raise RepositoryNotFoundError(f"404 {repo_id}", response=response)
                return hub.files(repo_id)

            def snapshot_download(self, repo_id, revision=None, allow_patterns=None, **kwargs):
                cache = hub.root.parent / "cache" / repo_id
                for name in hub.files(repo_id):
                    if any(fnmatch.fnmatch(name, pat) for pat in allow_patterns):
                        (cache / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(hub.root / repo_id / name, cache / name)
                return str(cache)

        self.api = FolderHfApi

    def files(self, repo_id: str) -> list[str]:
        repo = self.root / repo_id
        return sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()) if repo.is_dir() else []


@pytest.fixture
def folder_hub(monkeypatch, tmp_path) -> FolderHub:
    hub = FolderHub(tmp_path / "hub")
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", hub.api)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the folder hub is the Hub here
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    return hub


class SigtermAt(TrainerCallback):
    """Sends this process SIGTERM at a step: what SLURM or a spot instance does before the end."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def recipe(train_file: Path, out: Path, *extra: str) -> list[str]:
    return [
        *csv_recipe_args(train_file), "--max_train_samples", "48", "--max_eval_samples", "16",
        "--max_steps", "5", "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--eval_strategy", "no",
        "--save_strategy", "steps", "--save_steps", "2", "--load_best_model_at_end", "false",
        "--train_sampling_strategy", "sequential", "--logging_steps", "1",
        "--push_to_hub", "true", "--hub_model_id", REPO_ID, "--output_dir", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_preempted_run_continues_from_its_pushed_checkpoint_on_a_new_machine(folder_hub, fortunes_csv, tmp_path):
    first_machine, second_machine = tmp_path / "machine-a" / "model", tmp_path / "machine-b" / "model"
    # hub_always_push: each save waits for the previous upload, so both are pushed however slow the machine is
    # (by default a save during an upload is skipped: at load 5 checkpoint-3 was).
    cfg = parse_config(recipe(fortunes_csv["train"], first_machine, "--hub_strategy", "checkpoint",
                              "--hub_always_push", "true"))  # fmt: skip
    with pytest.raises(UserError, match="stopped by SIGTERM"):
        run(cfg, callbacks=(SigtermAt(2),))  # the stop is agreed at the next step: checkpoint-3 saved (and pushed)

    files = folder_hub.files(REPO_ID)
    assert folder_hub.created[0]["private"] is True  # private by default
    assert f"last-checkpoint/{CHECKPOINT_COMPLETE}" in files and "last-checkpoint/optimizer.pt" in files
    assert "model.safetensors" in files and "config.json" in files  # the model, at the root, at every save
    assert not any(name.endswith("training_args.bin") for name in files)
    assert [c["message"] for c in folder_hub.commits] == [
        f"hf-finetune: training in progress, step {step}" for step in (2, 3)
    ]
    # Every commit carried a complete checkpoint, and last-checkpoint/ holds the newest one only.
    assert all(f"last-checkpoint/{CHECKPOINT_COMPLETE}" in c["files"] for c in folder_hub.commits)
    assert read_json(folder_hub.root / REPO_ID / "last-checkpoint" / "trainer_state.json")["global_step"] == 3
    for name in files:
        assert FAKE_TOKEN.encode() not in (folder_hub.root / REPO_ID / name).read_bytes(), name

    # A new machine: an empty disk, the same recipe, `--resume hub`.
    cfg = parse_config(recipe(fortunes_csv["train"], second_machine, "--hub_strategy", "checkpoint", "--resume", "hub"))
    result = run(cfg)
    state = read_json(second_machine / "trainer_state.json")
    assert state["global_step"] == 5
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == [1, 2, 3, 4, 5]  # steps 1-3 came with the pushed checkpoint, 4-5 ran here
    assert (second_machine / "run_complete.json").is_file() and result.metrics["validation"]
    assert (
        read_json(folder_hub.root / REPO_ID / "last-checkpoint" / "trainer_state.json")["global_step"] == 5
    )  # the last save (at the end) was pushed too
    assert "README.md" in folder_hub.files(REPO_ID)  # and the finished model was pushed with its card


def test_resume_hub_with_nothing_pushed_starts_from_scratch(folder_hub, tmp_path, caplog):
    from hf_finetune.training.hub_checkpoints import resume_from_hub

    cfg = SimpleNamespace(training=SimpleNamespace(hub_model_id=REPO_ID, hub_token=None, hub_revision=None))
    with caplog.at_level("INFO", logger="hf_finetune"):
        assert resume_from_hub(cfg, tmp_path / "model") is None
    assert "found no checkpoint pushed" in caplog.text


def test_only_complete_checkpoints_are_staged_and_without_the_pickle(tmp_path, folder_hub):
    folder = tmp_path / "out" / "checkpoint-4"
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "optimizer.pt", "trainer_state.json", "training_args.bin"):
        (folder / name).write_bytes(b"x" * 10)
    push = SimpleNamespace(repo_id=REPO_ID, private=True, revision=None, token=None)
    pusher = PushCheckpoints(push, "checkpoint", always_push=False)
    state = SimpleNamespace(is_world_process_zero=True, global_step=4)
    args = SimpleNamespace(output_dir=str(tmp_path / "out"))
    pusher.on_save(args, state, None)
    pusher.on_train_end(args, state, None)
    assert folder_hub.commits == [] and not is_complete(folder)  # no sentinel: never pushed

    from hf_finetune.engine.checkpoints import mark_checkpoint_complete

    mark_checkpoint_complete(folder, 4)
    staged = stage_checkpoint(folder, "checkpoint")
    names = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert names == [
        "config.json", "last-checkpoint/checkpoint_complete.json", "last-checkpoint/config.json",
        "last-checkpoint/model.safetensors", "last-checkpoint/optimizer.pt", "last-checkpoint/trainer_state.json",
        "model.safetensors",
    ]  # fmt: skip
    shutil.rmtree(staged)


def test_a_checkpoint_strategy_without_push_to_hub_is_refused(tmp_path, capsys, fortunes_csv):
    out = tmp_path / "model"
    code, _, err = run_cli(
        ["train", *csv_recipe_args(fortunes_csv["train"]), "--hub_strategy", "checkpoint", "--output_dir", str(out)],
        capsys,
    )
    assert code == 2 and err.strip().startswith("error: hub_strategy checkpoint pushes checkpoints")
    assert len(err.strip().splitlines()) == 1 and not out.exists()
