"""One fine-tuning run, from a resolved config to a finished output folder.

The order matters: every input is checked (data, columns, labels, checkpoint,
strategy) before the output folder is touched, so bad input never leaves a
half-written folder; the completion marker is written last, so an interrupted run
is never mistaken for a finished model. The training loop itself is
`transformers.Trainer`; this module only assembles it and reports on it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from transformers import EarlyStoppingCallback, set_seed
from transformers.trainer_utils import TrainOutput

from hf_finetune.engine.checkpoints import check_resumable, plan_resume, remove_incomplete
from hf_finetune.engine.interruption import Interrupted
from hf_finetune.evaluation.plots import save_loss_curves_png
from hf_finetune.modeling.adapters import is_adapter_folder, save_adapter_config
from hf_finetune.modeling.attention import attention_for, use_attention
from hf_finetune.outputs import (
    METRICS,
    RUN_CONFIG,
    check_free_space,
    check_output_dir,
    check_writable,
    mark_complete,
    prepare_output_dir,
    write_json,
)
from hf_finetune.settings.arguments import RunConfig, write_run_config
from hf_finetune.settings.hardware import cpu_info
from hf_finetune.strategies.plan import TransferPlan, format_summary, resolve_strategies, unwrap_peft
from hf_finetune.tasks import TASKS
from hf_finetune.training.hub import keep_trainer_from_pushing, push_folder, push_settings
from hf_finetune.training.hub_checkpoints import check_hub_strategy, checkpoint_pushers, resume_from_hub
from hf_finetune.training.model_card import build_model_card
from hf_finetune.training.record import save_results_files, training_record
from hf_finetune.training.run_lock import check_not_in_use, lock_output_dir

logger = logging.getLogger("hf_finetune")


@dataclass
class RunResult:
    output_dir: Path
    metrics: dict  # split -> metric name -> value
    # The task's trivial baseline on the reported split: {"name": ..., "scores": {metric: value}}.
    baseline: dict
    model: object = field(default=None, repr=False)  # the trained model, in memory (on every process)
    # Extra evaluation sets a strategy added (dann: `target`), name -> metric name -> value.
    extra_metrics: dict = field(default_factory=dict)

    @property
    def majority_baseline(self) -> float | None:
        """Accuracy of always predicting the most frequent class (label set; tag O); None for regression."""
        return self.baseline["scores"].get("accuracy")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time (notebooks and pytest swap it)."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(is_main: bool) -> None:
    """Our messages on the main process only, one format; library chatter at warning level."""
    import datasets
    import transformers

    if not logger.handlers:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("[hf_finetune] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    # torch warns on every DataLoader when pin_memory (right on GPUs) meets a CPU-only machine.
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator.*")
    transformers.utils.logging.set_verbosity_warning()
    datasets.utils.logging.set_verbosity_warning()


@dataclass
class RunSetup:
    """Everything a run assembled before training: checked inputs, the model with its plan, the encoded data."""

    cfg: RunConfig
    state: object  # accelerate's PartialState: which process this is
    out: Path
    task: object
    strategies: list
    checkpoint: Path | None  # the checkpoint to resume from, or None
    data: object  # LabelledData
    processor: object
    model: object
    plan: TransferPlan
    encoded: dict
    extra_eval: dict  # extra evaluation sets a strategy added (dann: the labelled target domain)
    push: object  # HubPush or None
    blocks: list = field(default_factory=list)  # the plan's per-block summary, as training starts
    fit_seconds: float = 0.0  # what `Strategy.before_training` took (the convex probe's fit)


def run(cfg: RunConfig, data=None, callbacks: tuple = ()) -> RunResult:
    """Train, evaluate and write the output folder. `data` (a `LabelledData`) replaces the task's own loading:
    cross-validation folds and `hf-finetune compare` pass the splits they made, so every run sees the same ones.
    `callbacks`: extra `TrainerCallback`s (progress reporting, timing) added to the strategies' own."""
    setup = set_up(cfg, data)
    callbacks = (*callbacks, *checkpoint_pushers(cfg, setup.push))  # hub_strategy: checkpoints to the Hub
    run_lock = lock_output_dir(setup.out, setup.state)  # one run per output folder (`run_lock`)
    try:
        return train_and_report(setup, callbacks)
    finally:
        run_lock.release()


def train_and_report(setup: RunSetup, callbacks: tuple) -> RunResult:
    """Every phase after the checks, under the output folder's lock."""
    cfg = setup.cfg
    prepare_folder(setup)
    trainer = build_trainer(setup, callbacks)
    train_output, train_runtime = train_model(setup, trainer)
    metrics, extra_metrics, predictions = evaluate_splits(setup, trainer)
    report_split = "test" if "test" in predictions else "validation"
    baseline = {**setup.task.baseline(setup.data, predictions[report_split]), "split": report_split}
    if trainer.is_world_process_zero():
        summary = run_summary(setup, trainer, metrics, extra_metrics, baseline, train_runtime)
        write_outputs(
            setup.out, cfg, setup.task, trainer, setup.data, predictions, report_split, summary, train_output.metrics
        )
    setup.state.wait_for_everyone()
    print_results(setup.out, {**metrics, **extra_metrics}, baseline, setup.task, setup.state.is_main_process)
    if setup.push and setup.state.is_main_process:
        push = setup.push
        push_folder(setup.out, push.repo_id, private=push.private, revision=push.revision, token=push.token)
    return RunResult(
        output_dir=setup.out, metrics=metrics, baseline=baseline, model=trainer.model, extra_metrics=extra_metrics
    )


def set_up(cfg: RunConfig, data=None) -> RunSetup:
    """Check every input and build the model and its plan; nothing is written yet."""
    push = push_settings(cfg)  # repo id, token, privacy: checked before any work
    check_hub_strategy(cfg, push)
    # TrainingArguments built the process group (`FinetuneTrainingArguments.__post_init__`); the
    # Trainer uses the same one. A bare PartialState() here could pin another.
    state = cfg.training.distributed_state
    setup_logging(state.is_main_process)
    out = Path(cfg.training.output_dir)
    check_output_dir(out, cfg.run.overwrite_output_dir)
    check_writable(out)
    check_not_in_use(out, state)
    set_seed(cfg.training.seed)

    task = TASKS.get(cfg.run.task)(cfg)  # may adjust training settings (images: no length grouping)
    checkpoint = resume_from_hub(cfg, out) if cfg.run.resume == "hub" else plan_resume(cfg, out)
    strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
    task.check_model_inputs()
    data = task.load_data() if data is None else data
    sizes = {split: len(ds) for split, ds in data.splits.items()}
    logger.info("data %s: %s; %d labels: %s", data.source, sizes, len(data.label_names), ", ".join(data.label_names))
    processor = task.load_processor()
    model, new_keys = task.load_model(data.label_names)
    if switched := use_attention(model, attention_for(cfg.training.precision, cfg.training.device.type)):
        logger.info("eager attention for %s: faster than SDPA under CPU bf16 (modeling/attention.py)", switched[0])
    for strategy in strategies:
        model = strategy.prepare_model(model, new_keys)
    plan = TransferPlan(strategies, model, new_keys, distributed=state.num_processes > 1)
    check_free_space(out, bytes_to_save(model))
    if checkpoint is not None:
        check_resumable(checkpoint, model, data.label_names)
    encoded = task.encode(data, processor)
    extra_eval = extra_evaluation_sets(strategies, task, data, processor, encoded, cfg.training)
    fitting_started = time.time()
    for strategy in strategies:  # the convex probe fits the head here (linear_probe, lp_ft)
        strategy.before_training(model, task, data, processor)
    setup = RunSetup(
        cfg, state, out, task, strategies, checkpoint, data, processor, model, plan, encoded, extra_eval, push
    )
    setup.fit_seconds = time.time() - fitting_started
    return setup


def prepare_folder(setup: RunSetup) -> None:
    """The first write: the output folder with the resolved config, once every input has passed its checks."""
    cfg, out = setup.cfg, setup.out
    if setup.state.is_main_process:
        prepare_output_dir(out, cfg.run.overwrite_output_dir)
        remove_incomplete(out)
        write_run_config(cfg, out / RUN_CONFIG)
        for name, text in setup.data.extra_outputs.items():
            (out / name).write_text(text, encoding="utf-8")
    setup.state.wait_for_everyone()
    keep_trainer_from_pushing(cfg.training)  # we push once at the end; no token in pickled training args


def build_trainer(setup: RunSetup, callbacks: tuple):
    """The task's Trainer over the plan, with the strategies' callbacks; logs the batch and what trains."""
    cfg, task, encoded, args = setup.cfg, setup.task, setup.encoded, setup.cfg.training
    callbacks = [cb for s in setup.strategies for cb in s.callbacks()] + list(callbacks)
    if cfg.run.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.run.early_stopping_patience))
    trainer = task.build_trainer(
        model=setup.model,
        plan=setup.plan,
        args=args,
        data_collator=task.data_collator(setup.processor),
        train_dataset=encoded["train"],
        eval_dataset={"validation": encoded["validation"], **setup.extra_eval}
        if setup.extra_eval
        else encoded["validation"],
        processing_class=setup.processor,
        compute_metrics=task.compute_metrics(setup.data),
        callbacks=callbacks,
        loss_function=task.loss_function(setup.data),
        batch_transform=task.batch_transform(setup.processor, setup.data),
    )
    # Logged once every input has passed its checks: bad input stays one line (`error: ...`).
    logger.info("precision %s", cfg.training.precision_choice.describe())
    # Effective batch = per-device batch x processes x accumulation steps: what the LR was tuned for.
    logger.info(
        "strategy %s; effective batch %d = %d per device x %d process(es) x %d accumulation step(s)",
        "+".join(cfg.strategy.strategy_names),
        args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
        args.per_device_train_batch_size,
        args.world_size,
        args.gradient_accumulation_steps,
    )
    blocks = setup.blocks = setup.plan.summary(args.learning_rate)
    logger.info(
        "parameters per block (%s trained):\n%s", f"{sum(r['trainable'] for r in blocks):,}", format_summary(blocks)
    )
    return trainer


def train_model(setup: RunSetup, trainer):
    """Train (or resume), let the task finish, save the model: (output, seconds). Trainer reloads the best
    checkpoint (`StrategyTrainer._load_best_model`)."""
    started = time.time()
    if all(s.needs_training() for s in setup.strategies):
        train_output = train_or_stop(trainer, setup.checkpoint, setup.cfg.run.resume, setup.out)
    else:
        logger.info("the head was fitted before training; no optimizer steps to take")
        train_output = TrainOutput(0, 0.0, {})
        trainer.evaluate()  # one point on the validation curve (step 0), as every trained run has its curve
    train_runtime = time.time() - started + setup.fit_seconds  # a probe's fit is part of what training cost
    trainer.use_ema_weights()  # with ema_decay: the (best checkpoint's) average becomes the model
    setup.task.after_training(trainer, setup.encoded, setup.data)
    trainer.save_model(str(setup.out))
    if trainer.is_world_process_zero():
        if is_adapter_folder(setup.out):
            # Adapters alone do not say what the labels are; the config does (`hf_finetune.modeling.adapters`).
            save_adapter_config(setup.model, setup.out)
        # Trainer pickles TrainingArguments beside the model (hub_token was blanked before the Trainer
        # saw it); run_config.yaml replaces it with a readable file, so the final folder holds no pickle.
        (setup.out / "training_args.bin").unlink(missing_ok=True)
    return train_output, train_runtime


def split_metrics(prediction, prefix: str) -> dict:
    """A prediction's metrics without the split prefix and without the timing entries."""
    return {
        k[len(prefix) + 1 :]: v for k, v in prediction.metrics.items() if not k.endswith(("_runtime", "per_second"))
    }


def evaluate_splits(setup: RunSetup, trainer) -> tuple[dict, dict, dict]:
    """(metrics per split, metrics per extra evaluation set, predictions per split) of the trained model."""
    metrics, predictions = {}, {}
    for split in ("validation", "test"):
        if split in setup.encoded:
            predictions[split] = trainer.predict(setup.encoded[split], metric_key_prefix=split)
            metrics[split] = split_metrics(predictions[split], split)
    # Extra evaluation sets (dann's labelled target domain): beside, not among, the splits.
    extra_metrics = {
        name: split_metrics(trainer.predict(dataset, metric_key_prefix=name), name)
        for name, dataset in setup.extra_eval.items()
    }
    return metrics, extra_metrics, predictions


def run_summary(setup: RunSetup, trainer, metrics, extra_metrics, baseline, train_runtime) -> dict:
    """What metrics.json and the model card say about the run."""
    blocks = setup.blocks
    summary = {
        "label_names": setup.data.label_names,
        "data_sizes": {split: len(ds) for split, ds in setup.data.splits.items()},
        "parameters": (sum(r["trainable"] for r in blocks), sum(r["params"] for r in blocks)),
        "blocks": blocks,
        "adapter": is_adapter_folder(setup.out),
        "metrics": metrics,
        "train_runtime": train_runtime,
        "baseline": baseline,
        "hardware": describe_hardware(trainer, setup.state),
        **precision_record(setup.cfg.training.precision_choice),
        **setup.task.summary_extras(setup.data),
        **training_record(trainer),  # hyper-parameters, per-epoch results, framework versions (the card's)
    }
    if extra_metrics:
        summary["extra_evaluations"] = extra_metrics
    if "accuracy" in baseline["scores"]:  # the most frequent class (label set, tag): kept for older readers
        summary["majority_baseline"] = baseline["scores"]["accuracy"]
    return summary


def train_or_stop(trainer, checkpoint: Path | None, resume: str, out: Path):
    """`trainer.train()`, from `checkpoint` when resuming; a SIGTERM or Ctrl-C ends it after the current
    step with a checkpoint saved, and becomes `Interrupted` (exit 143 / 130) instead of a final model."""
    if checkpoint is not None:
        logger.info("resuming from %s (resume: %s; --resume false starts over)", checkpoint, resume)
    stop = trainer.stop_on_signal
    stop.install()
    try:
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        stop.uninstall()
    if stop.stopped_at is None:
        return output
    # No rank exits before the main process has finished the checkpoint: a launcher or scheduler that
    # ends the whole job when one process exits (srun --kill-on-bad-exit) would cut the save short.
    trainer.accelerator.wait_for_everyone()
    signum = stop.received or signal.SIGTERM  # None: only another process received it
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    raise Interrupted(
        f"stopped by {signal.Signals(signum).name} at step {stop.stopped_at} of {trainer.state.max_steps}; "
        f"checkpoint saved to {out / f'checkpoint-{stop.stopped_at}'}. Resume by running the same command again "
        f"(resume: auto continues from it): {command}",
        signum,
    )


def bytes_to_save(model) -> int:
    """About what a checkpoint (weights + Adam's two moments of the trained weights) and the final model take."""

    params = list(model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    saved = trainable if unwrap_peft(model) is not model else sum(p.numel() * p.element_size() for p in params)
    return 2 * saved + 2 * trainable


def precision_record(choice) -> dict:
    """What metrics.json and the card say about the arithmetic: chosen, asked for, and why."""
    return {"precision": choice.precision, "precision_requested": choice.requested, "precision_reason": choice.reason}


def describe_hardware(trainer, state) -> str:
    """For the model card: `1 process on CPU (Intel(R) Xeon(R) Processor, 2 cores; avx2 avx512f), fp32`,
    `2 processes on CPU (..., 2 cores; avx2), gloo, fp32`, `4 processes on NVIDIA H100 80GB HBM3, nccl, bf16`."""
    import torch

    device = trainer.args.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        cpu = cpu_info()  # the flags decide which kernels ran, so they belong with every number
        name = f"CPU ({cpu.model}, {cores} cores; {' '.join(cpu.flags) or 'no AVX2'})"
    else:
        name = device.type.upper()
    n = state.num_processes
    parts = [f"{n} process{'es' if n > 1 else ''} on {name}"]
    if n > 1 and getattr(state, "backend", None):
        parts.append(str(state.backend))
    # What the Accelerator runs, whether it came from --bf16 or from the launch config.
    precision = trainer.accelerator.mixed_precision
    parts.append("fp32" if precision == "no" else precision)
    return ", ".join(parts)


def write_outputs(out, cfg, task, trainer, data, predictions, report_split, summary, train_metrics) -> None:
    """Everything but the weights (saved by Trainer); the completion marker last."""
    trainer.save_state()  # trainer_state.json: log history, best checkpoint
    sections: dict = {}
    for split, prediction in predictions.items():
        for name, value in task.evaluation_report(prediction, data).items():
            sections.setdefault(name, {})[split] = value
    write_json(out / METRICS, {**summary, "train": train_metrics, **sections, "report_split": report_split})
    save_results_files(trainer, train_metrics, predictions, summary["data_sizes"])  # the example scripts' files
    prediction = predictions[report_split]
    task.write_report_files(out, prediction, data, report_split)
    save_loss_curves_png(trainer.state.log_history, out / "loss_curves.png")
    task.write_mistakes(out, data.splits[report_split], prediction, data)
    build_model_card(cfg, task, summary).save(out / "README.md")
    mark_complete(out, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": summary["metrics"]})


def print_results(out: Path, metrics: dict, baseline: dict, task, is_main: bool):
    if not is_main:
        return
    keys = [*task.metric_keys, "loss"]
    width = max(17, *(len(k) + 2 for k in keys))
    print()
    print(f"{'split':<12}" + "".join(f"{k:>{width}}" for k in keys))
    for split, values in metrics.items():
        print(f"{split:<12}" + "".join(f"{values.get(k, float('nan')):>{width}.4f}" for k in keys))
    scores = ", ".join(f"{k} {v:.4f}" for k, v in baseline["scores"].items())
    print(f"baseline ({baseline['name']}, {baseline['split']}): {scores}")
    print(f"model saved to {out}")
    print(task.load_hint(out))


def extra_evaluation_sets(strategies, task, data, processor, encoded: dict, args) -> dict:
    """Let each strategy extend the encoded data (`Strategy.extend_data`); collect the extra evaluation sets.

    With extra sets, Trainer scores a dict of sets and prefixes each set's metrics with its name, so the
    checkpoint is still chosen on the validation split: `macro_f1` becomes `validation_macro_f1`.
    """
    extra = {}
    for strategy in strategies:
        extra.update(strategy.extend_data(task, data, processor, encoded))
    metric = (args.metric_for_best_model or "").removeprefix("eval_")
    if extra and metric and not metric.startswith("validation_"):
        args.metric_for_best_model = f"validation_{metric}"
    return extra
