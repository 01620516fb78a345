"""`hf-finetune tune`: an Optuna study whose trials are ordinary `training.run` runs.

Why Optuna around our own `run` rather than `Trainer.hyperparameter_search(backend="optuna")`: that method
re-creates the model through `model_init` and only changes `TrainingArguments`, so it bypasses what a run is
here: the strategy plan (freezing, LLRD, adapters are decided before the Trainer exists), the input checks,
the output folder with its completion marker, checkpoints and resume. Here each trial is `run(cfg)` with the
sampled values as recipe keys: a trial folder is a finished run (`run_complete.json`, `run_config.yaml`,
model card) that `hf-finetune train --config <folder>/run_config.yaml` repeats, and a trial interrupted by a
crash resumes from its checkpoint when the study continues.

The loop is Optuna's ask-and-tell, not `study.optimize`: the budget (`--n_trials`) is the size of the study,
not a number per command, so the same command after `kill -9` or a second worker on the same storage
adds only what is missing; counting and starting a trial happen under a lock beside a local storage.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState
from transformers import AutoConfig, TrainerCallback

from hf_finetune.analysis.advisor import advise
from hf_finetune.analysis.features import load_config_data
from hf_finetune.analysis.tuning.space import SearchSpace, build_space, suggest
from hf_finetune.analysis.tuning.storage import (
    Heartbeat,
    default_storage,
    local_file,
    open_storage,
    release_stale,
    requeue,
    study_lock,
    worker_attrs,
)
from hf_finetune.data.splits import LabelledData
from hf_finetune.engine.interruption import Interrupted
from hf_finetune.errors import TrainingDiverged, UserError, first_line
from hf_finetune.modeling.loading import resolve_checkpoint
from hf_finetune.outputs import METRICS, is_finished, write_json
from hf_finetune.recipes import parse_config, resolve_recipe_path
from hf_finetune.settings.arguments import DEFAULT_OUTPUT_ROOT, DataArguments
from hf_finetune.strategies.plan import resolve_strategies
from hf_finetune.tasks import TASKS
from hf_finetune.training.run import run

logger = logging.getLogger("hf_finetune")

TRIAL_PRUNED = "trial_pruned.json"
SAMPLERS, PRUNERS = ("tpe", "random", "grid"), ("median", "hyperband", "none")
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse")
# Data keys a trial may change without reloading the data (it is encoded per trial anyway).
ENCODING_KEYS = {"max_seq_length"}


@dataclass
class TuneOptions:
    config: str
    overrides: list
    n_trials: int = 20
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    pruner_startup_trials: int = 3
    metric: str | None = None
    out: str | None = None
    strategies: list | None = None
    advise_first: bool = False
    sampler_seed: int | None = None


def override_keys(overrides: list[str]) -> set[str]:
    """Recipe keys given on the command line (`--num_train_epochs 1`): fixed, so not searched."""
    return {a[2:].split("=", 1)[0].replace("-", "_") for a in overrides if a.startswith("--")}


def metric_and_direction(cfg, metric: str | None) -> tuple[str, str]:
    """The validation metric trials are judged on (default: the recipe's `metric_for_best_model`)."""
    task = TASKS.get(cfg.run.task)(cfg)
    metric = (metric or cfg.training.metric_for_best_model or task.best_metric).removeprefix("eval_")
    valid = (*task.metric_keys, "loss")
    if metric not in valid:
        raise UserError(f"--metric {metric} is not a metric of task {cfg.run.task}; choose one of {', '.join(valid)}")
    return metric, "minimize" if metric in LOWER_IS_BETTER else "maximize"


def count_blocks(cfg) -> int:
    """Transformer blocks of the recipe's checkpoint: the bound of options counted in blocks."""
    try:
        config = AutoConfig.from_pretrained(resolve_checkpoint(cfg.model.model_name_or_path))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the checkpoint's config: {first_line(exc)}") from None
    return int(getattr(config, "num_hidden_layers", 0) or 0)


def check_options(options: TuneOptions) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(
            "tune runs one process per trial and is not started with `accelerate launch` (each process would "
            "sample its own trial); start several `hf-finetune tune` workers on one --storage instead"
        )
    if options.n_trials < 1:
        raise UserError(f"--n_trials must be at least 1, got {options.n_trials}")
    if options.timeout is not None and options.timeout <= 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {options.timeout}")
    if options.sampler not in SAMPLERS or options.pruner not in PRUNERS:
        raise UserError(f"--sampler is one of {', '.join(SAMPLERS)}; --pruner one of {', '.join(PRUNERS)}")


class Tuner:
    """One worker of one study: checks every input, then runs trials until the study holds `n_trials`."""

    def __init__(self, options: TuneOptions):
        check_options(options)
        self.options = options
        self.recipe_path = resolve_recipe_path(options.config)
        self.overrides = list(options.overrides)
        self.base = parse_config(["--config", str(self.recipe_path), *self.overrides], prog="hf-finetune tune")
        if self.base.run.cv_folds:
            raise UserError("tune judges each trial on the validation split; remove cv_folds")
        self.metric, self.direction = metric_and_direction(self.base, options.metric)
        self.fixed = override_keys(self.overrides)
        self.space: SearchSpace = build_space(self.base, count_blocks(self.base), options.strategies, self.fixed)
        stem = self.recipe_path.stem
        self.out = Path(options.out or Path(DEFAULT_OUTPUT_ROOT) / f"tune-{stem}")
        self.storage_url = options.storage or default_storage(self.out)
        self.study_name = options.study_name or f"{stem}-tune"
        self.n_trials = options.n_trials
        if options.sampler == "grid":
            self.n_trials = min(self.n_trials, len(self.space.grid()))
        if options.storage:  # the user's storage is checked before anything is written
            self.storage = open_storage(self.storage_url)
        self._data = None

    # --- the study ---

    def sampler(self):
        seed = self.options.sampler_seed
        if self.options.sampler in ("random", "grid"):  # grid: every point is enqueued (`enqueue_grid`)
            return optuna.samplers.RandomSampler(seed=seed)
        # TPE's default of 10 random trials first would leave a 12-trial study almost random: a third, 3-10.
        startup = min(10, max(3, self.n_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)

    def pruner(self):
        if self.options.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.options.pruner_startup_trials, n_warmup_steps=0)
        if self.options.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
        return optuna.pruners.NopPruner()

    def open_study(self):
        self.out.mkdir(parents=True, exist_ok=True)
        storage = self.storage if self.options.storage else open_storage(self.storage_url)
        with study_lock(self.storage_url):  # two new workers would both create the study
            study = optuna.create_study(storage=storage, study_name=self.study_name, direction=self.direction,
                                        sampler=self.sampler(), pruner=self.pruner(), load_if_exists=True)  # fmt: skip
        recorded = study.user_attrs.get("metric")
        if recorded is None:
            study.set_user_attr("metric", self.metric)
            study.set_user_attr("recipe", str(self.recipe_path))
        elif recorded != self.metric:
            raise UserError(f"study {self.study_name} judges trials on {recorded}, not {self.metric}; pass "
                            f"--metric {recorded} or another --study_name")  # fmt: skip
        return study

    def budget_used(self, study) -> int:
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return len(study.get_trials(deepcopy=False, states=states))

    def next_trial(self, study, started: float):
        """Start the next trial, or None when the study is full or the time is up (one step under the lock)."""
        with study_lock(self.storage_url):
            release_stale(study, locked=local_file(self.storage_url) is not None)
            timeout = self.options.timeout
            if self.budget_used(study) >= self.n_trials or (timeout and time.time() - started > timeout):
                return None
            trial = study.ask()
            for key, value in worker_attrs().items():
                trial.set_user_attr(key, value)
            if "folder" not in trial.user_attrs:
                trial.set_user_attr("folder", str(self.out / "trials" / f"trial-{trial.number:04d}"))
            return trial

    def work(self, on_trial_end=None):
        """Run trials until the study is full; `on_trial_end(study)` after each (progress files)."""
        study = self.open_study()
        if self.options.advise_first:
            self.enqueue_advice(study)
        if self.options.sampler == "grid":
            self.enqueue_grid(study)
        started = time.time()
        while (trial := self.next_trial(study, started)) is not None:
            self.run_trial(study, trial)
            gc.collect()  # a trial's model and Trainer are gone; give their memory back before the next
            if on_trial_end is not None:
                on_trial_end(study)
        return study

    # --- one trial ---

    def trial_argv(self, strategy: str, values: dict, folder: Path) -> list[str]:
        argv = ["--config", str(self.recipe_path), *self.overrides, "--strategy", strategy,
                "--output_dir", str(folder), "--metric_for_best_model", self.metric,
                "--greater_is_better", str(self.direction == "maximize")]  # fmt: skip
        if "learning_rate" not in values and "learning_rate" not in self.fixed:
            if strategy != "+".join(self.base.strategy.strategy_names):  # the recipe's rate is another strategy's
                classes = resolve_strategies(strategy.split("+"))
                values = {
                    **values,
                    "learning_rate": next(c.default_learning_rate for c in classes if c.default_learning_rate),
                }
        for key, value in values.items():
            argv += [f"--{key}", str(value)]
        return argv

    def trial_data(self):
        """The recipe's splits, loaded once per worker, unless the space changes how data is loaded."""
        keys = {k for s in self.space.strategies for k, _ in self.space.params(s).values()}
        loading = {f.name for f in dataclasses.fields(DataArguments)} - ENCODING_KEYS
        if keys & (loading | {"seed", "data_seed"}):
            return None
        if self._data is None:
            self._data = load_config_data(self.base)
        data = self._data
        return LabelledData(dict(data.splits), data.label_names, data.source, dict(data.extra_outputs))

    def run_trial(self, study, trial) -> None:
        strategy, values = suggest(trial, self.space)
        folder = Path(trial.user_attrs["folder"])
        if is_finished(folder):  # the worker died between the run's end and telling the study
            summary = read_json(folder / METRICS)
            study.tell(trial, summary["metrics"]["validation"][self.metric])
            return
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        logger.info("trial %d (%s): %s; %s", trial.number, folder, strategy, shown)
        try:
            # Inside the try: a sampled combination the checks refuse fails this trial, not the study's bookkeeping.
            cfg = parse_config(self.trial_argv(strategy, values, folder), prog="hf-finetune tune")
            with Heartbeat(trial):
                result = run(cfg, data=self.trial_data(), callbacks=(PruneOnEvaluation(trial, self.metric),))
        except optuna.TrialPruned as exc:
            return self.prune(study, trial, folder, str(exc))
        except TrainingDiverged as exc:
            return self.prune(study, trial, folder, f"diverged: {exc}")
        except (Interrupted, KeyboardInterrupt):
            requeue(study, frozen(study, trial.number), "was interrupted")
            raise
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        value = result.metrics["validation"][self.metric]
        study.tell(trial, value)
        remove_checkpoints(folder)
        logger.info("trial %d: validation %s %.4f", trial.number, self.metric, value)

    def prune(self, study, trial, folder: Path, reason: str) -> None:
        """Mark the folder (it holds no final model, on purpose) and the trial as pruned."""
        steps = frozen(study, trial.number).intermediate_values
        write_json(folder / TRIAL_PRUNED, {"trial": trial.number, "reason": reason, "metric": self.metric,
                                           "reported": {str(k): v for k, v in sorted(steps.items())}})  # fmt: skip
        remove_checkpoints(folder)
        study.tell(trial, state=TrialState.PRUNED)
        logger.info("trial %d pruned: %s", trial.number, reason)

    def enqueue_grid(self, study) -> None:
        """The grid's points as waiting trials of a new study, once (a resumed study already holds them)."""
        with study_lock(self.storage_url):
            if study.user_attrs.get("grid_enqueued"):
                return
            for params in self.space.grid():
                study.enqueue_trial(params, skip_if_exists=True)
            study.set_user_attr("grid_enqueued", True)

    def enqueue_advice(self, study) -> None:
        """`hf-finetune advise`'s recommendation as the first trial of a new study (measured once, ~10-20 s)."""
        if study.get_trials(deepcopy=False):
            return
        rec = advise(self.base.to_recipe(), base_name=str(self.recipe_path)).recommendation
        if rec.strategy not in self.space.strategies:
            logger.info("advisor recommends %s, which --strategies does not search: not enqueued", rec.strategy)
            return
        names = self.space.params(rec.strategy)
        params = {name: rec.hyperparameters[key] for name, (key, _) in names.items() if key in rec.hyperparameters}
        if len(self.space.strategies) > 1:
            params["strategy"] = rec.strategy
        study.enqueue_trial(params, user_attrs={"advised": True})
        logger.info("first trial: the advisor's %s %s", rec.strategy, params)


class PruneOnEvaluation(TrainerCallback):
    """Report each evaluation's validation metric to the trial (step = epoch); stop when the pruner says so."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        # With extra evaluation sets (dann) Trainer prefixes each set's metrics with its name.
        value = metrics.get(f"eval_{self.metric}", metrics.get(f"eval_validation_{self.metric}"))
        if value is None:
            return
        step = max(1, round(state.epoch or 0))
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {step}: validation {self.metric} {value:.4f}")


def remove_checkpoints(folder: Path) -> None:
    """A finished or pruned trial's checkpoints only served resume; a study of many trials would fill the disk."""
    for checkpoint in folder.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def frozen(study, number: int):
    """The stored state of trial `number` (intermediate values, user attributes) as the storage holds it."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
