"""`hf-finetune tune`: real Optuna studies on a tiny BERT (built from a config, with MiniLM's real tokenizer)
and real fortunes, stored in real SQLite files; a worker is really SIGKILLed, two workers really share a study.

Each trial trains 2 steps on 32 fortunes at 32 tokens, so a trial costs seconds and the studies test the
machinery (budget, pruning, resume, sharing), not the model.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from conftest import REPO, run_cli
from optuna.trial import TrialState

from hf_finetune.analysis.tuning.space import build_space
from hf_finetune.outputs import COMPLETE_MARKER
from hf_finetune.recipes import parse_config

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, max_position_embeddings=64
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, minilm_dir) -> Path:
    """A recipe on a tiny random BERT with MiniLM's tokenizer; the study searches only the learning rate."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = AutoConfig.for_model("bert", vocab_size=tokenizer.vocab_size, num_labels=4, **TINY)
    torch.manual_seed(0)  # the same random model every session: which trial is worse must not depend on the draw
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    values = {
        "task": "text_classification", "model_name_or_path": str(folder), "dataset_name": "packaged:fortunes-topics",
        "max_train_samples": 32, "max_eval_samples": 32, "max_seq_length": 32, "num_train_epochs": 1,
        "per_device_train_batch_size": 16, "learning_rate": 1e-4, "logging_steps": 1,
        "tune_space": {"replace": True, "learning_rate": {"low": 1e-5, "high": 2.0, "log": True}},
    }  # fmt: skip
    path = folder.parent / "tiny_tune.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def tune_argv(recipe: Path, out: Path, n_trials: int, *extra: str) -> list[str]:
    return ["tune", "--config", str(recipe), "--out", str(out), "--n_trials", str(n_trials), "--metric", "loss",
            *extra]  # fmt: skip


def load_study(out: Path, name: str = "tiny_tune-tune"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def finished_folders(study) -> list[str]:
    return [t.user_attrs["folder"] for t in study.get_trials(states=(TrialState.COMPLETE,))]


@pytest.mark.slow
def test_a_three_trial_study_prunes_a_huge_learning_rate_and_writes_a_runnable_best_recipe(recipe, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    # The trials, in order: two sane rates, then 1.0 (10^4 x the recipe's). Enqueued through Optuna's own API.
    study = optuna.create_study(study_name="tiny_tune-tune", storage=f"sqlite:///{out / 'study.db'}",
                                direction="minimize")  # fmt: skip
    for lr in (1e-4, 3e-4, 1.0):
        study.enqueue_trial({"learning_rate": lr})
    argv = tune_argv(recipe, out, 3, "--pruner", "median", "--pruner_startup_trials", "2")
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0
    study = load_study(out)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED], [
        (t.state, t.value, t.intermediate_values) for t in study.trials
    ]
    pruned = Path(study.trials[2].user_attrs["folder"])
    marker = json.loads((pruned / "trial_pruned.json").read_text())
    assert marker["reason"].startswith("pruned at epoch 1")
    assert float(marker["reported"]["1"]) > max(t.value for t in study.trials[:2])  # worse than both sane ones
    assert not (pruned / COMPLETE_MARKER).exists() and not list(pruned.glob("checkpoint-*"))
    for trial in study.trials[:2]:
        folder = Path(trial.user_attrs["folder"])
        assert (folder / COMPLETE_MARKER).is_file() and (folder / "model.safetensors").is_file()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert trial.value == pytest.approx(metrics["metrics"]["validation"]["loss"])
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[3].split(",")[1] == "PRUNED"
    for name in ("optimization_history.png", "param_importances.png", "parallel_coordinate.png", "tune_report.md"):
        assert (out / name).stat().st_size > 1000, name
    best = study.best_trial
    cfg = parse_config(["--config", str(out / "best_recipe.yaml")])  # what `hf-finetune train --config` runs
    assert cfg.training.learning_rate == pytest.approx(best.params["learning_rate"])
    assert cfg.training.output_dir != best.user_attrs["folder"]  # a fresh folder, not the trial's
    assert f"best trial {best.number}" in stdout


def trial_rows(out: Path) -> list[tuple]:
    try:
        with sqlite3.connect(out / "study.db") as db:
            return db.execute("select number, state from trials order by number").fetchall()
    except sqlite3.OperationalError:  # the file exists before Optuna has created its tables
        return []


@pytest.mark.slow
def test_sigkill_mid_study_then_the_same_command_finishes_it_without_losing_or_repeating_a_trial(recipe, tmp_path):
    out = tmp_path / "study"
    command = [sys.executable, "-m", "hf_finetune.cli", *tune_argv(recipe, out, 2, "--sampler_seed", "0")]
    worker = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and worker.poll() is None:  # kill it once the second trial runs
        if (out / "study.db").exists() and (1, "RUNNING") in trial_rows(out):
            break
        time.sleep(0.5)
    assert worker.poll() is None, "the study ended before the second trial started"
    worker.send_signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    killed = load_study(out).trials[1]
    assert killed.state == TrialState.RUNNING  # what a dead worker leaves behind

    again = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = load_study(out).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    retry = trials[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.params == killed.params  # the interrupted trial, re-run
    assert retry.user_attrs["folder"] == killed.user_attrs["folder"]  # in its own folder
    folders = finished_folders(load_study(out))
    assert len(folders) == len(set(folders)) == 2
    assert all((Path(f) / COMPLETE_MARKER).is_file() for f in folders)
    assert len(list((out / "trials").glob(f"*/{COMPLETE_MARKER}"))) == 2


@pytest.mark.slow
def test_two_workers_on_one_sqlite_study_finish_it_together_without_running_a_trial_twice(recipe, tmp_path):
    out = tmp_path / "study"
    command = [sys.executable, "-m", "hf_finetune.cli", *tune_argv(recipe, out, 4, "--pruner", "none")]
    workers = [subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]  # fmt: skip
    for worker in workers:
        _, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err[-2000:]
    study = load_study(out)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4  # exactly the budget, nothing failed
    folders = finished_folders(study)
    assert len(set(folders)) == 4
    assert len(list((out / "trials").glob(f"*/{COMPLETE_MARKER}"))) == 4
    assert {t.user_attrs["pid"] for t in study.trials} == {w.pid for w in workers}  # both did work


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tune_space", "{lerning_rate: [1, 2]}"], "unknown key(s) in tune_space: lerning_rate"),
        (["--tune_space", "{weight_decay: {low: 0.1, high: 0.01}}"], "weight_decay is an empty range"),
        (["--metric", "bleu"], "--metric bleu is not a metric of task text_classification"),
        (["--storage", "sqlite:////nonexistent-folder/x/study.db"], "cannot open --storage"),
        (["--storage", "nosuchdb://host/db"], "cannot open --storage"),
        (["--strategies", "full,lora", "--tune_space", "{llrd_decay: [0.8]}"], "option of strategy llrd"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(recipe, tmp_path, capsys, extra, message):
    out = tmp_path / "study"
    code, _, err = run_cli(tune_argv(recipe, out, 3, *extra), capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert not out.exists()


def test_each_strategy_declares_its_space_bounded_by_the_models_depth(recipe):
    cfg = parse_config(["--config", str(recipe), "--tune_space", "{}"])
    space = build_space(cfg, num_blocks=6, strategies=["full", "freeze_bottom+llrd", "lora"], fixed={"weight_decay"})
    assert space.own["freeze_bottom+llrd"]["freeze_num_layers"].high == 5  # all but the top block of 6
    assert 0 < space.own["freeze_bottom+llrd"]["llrd_decay"].low < space.own["freeze_bottom+llrd"]["llrd_decay"].high
    assert set(space.own["lora"]) == {"learning_rate", "lora_r", "lora_alpha"}
    # full's range is centred on the recipe's rate (tuned for full), lora's on its own default
    assert space.own["full"]["learning_rate"].low == pytest.approx(1e-4 / 5)
    assert space.own["lora"]["learning_rate"].high == pytest.approx(5e-4 * 5)
    assert "weight_decay" not in space.common and "num_train_epochs" in space.common  # fixed on the command line
    assert space.param_name("lora", "learning_rate") == "lora:learning_rate"


def test_a_running_trial_whose_worker_is_gone_is_failed_and_queued_again_with_its_params_and_folder(tmp_path):
    """Same host: a dead pid is noticed at once; another host: only after STALE_AFTER_S without a heartbeat."""
    import socket

    from hf_finetune.analysis.tuning.storage import STALE_AFTER_S, open_storage, release_stale

    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'journal.log'}"), study_name="s")
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process now
    workers = {
        "dead here": {"host": socket.gethostname(), "pid": dead.pid, "heartbeat": time.time()},
        "silent elsewhere": {"host": "other-machine", "pid": 1, "heartbeat": time.time() - STALE_AFTER_S - 5},
        "alive elsewhere": {"host": "other-machine", "pid": 1, "heartbeat": time.time()},
        "alive here": {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()},
    }
    for i, attrs in enumerate(workers.values()):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
        for key, value in {**attrs, "folder": f"trial-{i}"}.items():
            trial.set_user_attr(key, value)
    release_stale(study, locked=False)
    trials = optuna.load_study(study_name="s", storage=open_storage(f"journal:{tmp_path / 'journal.log'}")).trials
    assert [t.state for t in trials[:4]] == [TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    retries = trials[4:]
    assert [t.state for t in retries] == [TrialState.WAITING] * 2
    assert [t.user_attrs["retry_of"] for t in retries] == [0, 1]
    assert [t.user_attrs["folder"] for t in retries] == ["trial-0", "trial-1"]
    assert retries[0].system_attrs["fixed_params"] == trials[0].params


def test_the_grid_covers_each_strategy_with_only_its_own_knobs(recipe):
    cfg = parse_config(["--config", str(recipe), "--tune_space", "{replace: true, learning_rate: {low: 1.0e-5, "
                        "high: 1.0e-3, log: true}, lora_r: [4, 8]}"])  # fmt: skip
    space = build_space(cfg, num_blocks=2, strategies=["full", "lora"], fixed=set())
    grid = space.grid()
    assert len(grid) == 3 + 3 * 2  # full: 3 rates; lora: 3 rates x 2 ranks (no full x lora cross product)
    assert {"strategy": "full", "full:learning_rate": pytest.approx(1e-4)} in grid  # geometric middle
    assert all(set(p) == {"strategy", "lora:learning_rate", "lora:lora_r"} for p in grid if p["strategy"] == "lora")


def test_advise_first_enqueues_the_advisors_strategy_and_rate_as_the_first_trial(recipe, tmp_path):
    from hf_finetune.analysis.tuning.study import TuneOptions, Tuner

    options = TuneOptions(config=str(recipe), overrides=["--tune_space", "{}"], out=str(tmp_path / "study"),
                          strategies=["full", "linear_probe", "freeze_bottom"], advise_first=True)  # fmt: skip
    tuner = Tuner(options)
    study = tuner.open_study()
    tuner.enqueue_advice(study)
    (first,) = study.get_trials(states=(TrialState.WAITING,))
    assert first.number == 0 and first.user_attrs["advised"]
    params = first.system_attrs["fixed_params"]
    # 32 training rows is little data: the advisor picks a head-only or partly frozen strategy, with its rate
    assert params["strategy"] in ("linear_probe", "freeze_bottom")
    assert params[f"{params['strategy']}:learning_rate"] > 0
    tuner.enqueue_advice(study)  # a study that already has trials gets no second advice
    assert len(study.get_trials()) == 1
