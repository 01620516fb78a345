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

from .adapters import is_adapter_folder, save_adapter_config
from .checkpoints import check_resumable, load_renamed_weights, plan_resume, remove_incomplete
from .config import RunConfig, write_run_config
from .hub import keep_trainer_from_pushing, push_folder, push_settings
from .interruption import Interrupted
from .model_card import build_model_card
from .outputs import (
    METRICS,
    RUN_CONFIG,
    check_free_space,
    check_output_dir,
    check_writable,
    mark_complete,
    prepare_output_dir,
    write_json,
)
from .plots import save_loss_curves_png
from .tasks import TASKS
from .transfer import TransferPlan, format_summary, resolve_strategies

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


def run(cfg: RunConfig, data=None, callbacks: tuple = ()) -> RunResult:
    """Train, evaluate and write the output folder. `data` (a `LabelledData`) replaces the task's own loading:
    cross-validation folds and `hf-finetune compare` pass the splits they made, so every run sees the same ones.
    `callbacks`: extra `TrainerCallback`s (progress reporting, timing) added to the strategies' own."""
    from transformers import EarlyStoppingCallback, set_seed
    from transformers.trainer_utils import TrainOutput

    push = push_settings(cfg)  # repo id, token, privacy: checked before any work
    # TrainingArguments built the process group (`FinetuneTrainingArguments.__post_init__`); the
    # Trainer uses the same one. A bare PartialState() here could pin another.
    state = cfg.training.distributed_state
    setup_logging(state.is_main_process)
    out = Path(cfg.training.output_dir)
    check_output_dir(out, cfg.run.overwrite_output_dir)
    check_writable(out)
    set_seed(cfg.training.seed)

    task = TASKS.get(cfg.run.task)(cfg)  # may adjust training settings (images: no length grouping)
    checkpoint = plan_resume(cfg, out)
    strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
    task.check_model_inputs()
    data = task.load_data() if data is None else data
    sizes = {split: len(ds) for split, ds in data.splits.items()}
    logger.info("data %s: %s; %d labels: %s", data.source, sizes, len(data.label_names), ", ".join(data.label_names))
    processor = task.load_processor()
    model, new_keys = task.load_model(data.label_names)
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
    fit_runtime = time.time() - fitting_started

    if state.is_main_process:
        prepare_output_dir(out, cfg.run.overwrite_output_dir)
        remove_incomplete(out)
        write_run_config(cfg, out / RUN_CONFIG)
        for name, text in data.extra_outputs.items():
            (out / name).write_text(text, encoding="utf-8")
    state.wait_for_everyone()
    keep_trainer_from_pushing(cfg.training)  # we push once at the end; no token in pickled training args

    callbacks = [cb for s in strategies for cb in s.callbacks()] + list(callbacks)
    if cfg.run.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.run.early_stopping_patience))
    trainer = task.build_trainer(
        model=model,
        plan=plan,
        args=cfg.training,
        data_collator=task.data_collator(processor),
        train_dataset=encoded["train"],
        eval_dataset={"validation": encoded["validation"], **extra_eval} if extra_eval else encoded["validation"],
        processing_class=processor,
        compute_metrics=task.compute_metrics(data),
        callbacks=callbacks,
        loss_function=task.loss_function(data),
    )
    args = cfg.training
    # Effective batch = per-device batch x processes x accumulation steps: what the LR was tuned for.
    logger.info(
        "strategy %s; effective batch %d = %d per device x %d process(es) x %d accumulation step(s)",
        "+".join(cfg.strategy.strategy_names),
        args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
        args.per_device_train_batch_size,
        args.world_size,
        args.gradient_accumulation_steps,
    )
    blocks = plan.summary(args.learning_rate)
    parameters = (sum(r["trainable"] for r in blocks), sum(r["params"] for r in blocks))
    logger.info("parameters per block (%s trained):\n%s", f"{parameters[0]:,}", format_summary(blocks))

    started = time.time()
    if all(s.needs_training() for s in strategies):
        train_output = train_or_stop(trainer, checkpoint, cfg.run.resume, out)
    else:
        logger.info("the head was fitted before training; no optimizer steps to take")
        train_output = TrainOutput(0, 0.0, {})
        trainer.evaluate()  # one point on the validation curve (step 0), as every trained run has its curve
    train_runtime = time.time() - started + fit_runtime  # a probe's fit is part of what training cost
    reload_best_model(trainer)
    task.after_training(trainer, encoded, data)
    trainer.save_model(str(out))
    adapter = is_adapter_folder(out)
    if trainer.is_world_process_zero():
        if adapter:
            # Adapters alone do not say what the labels are; the config does (`hf_finetune.adapters`).
            save_adapter_config(model, out)
        # Trainer pickles TrainingArguments beside the model (hub_token was blanked before the Trainer
        # saw it); run_config.yaml replaces it with a readable file, so the final folder holds no pickle.
        (out / "training_args.bin").unlink(missing_ok=True)

    metrics, predictions = {}, {}
    for split in ("validation", "test"):
        if split not in encoded:
            continue
        prediction = trainer.predict(encoded[split], metric_key_prefix=split)
        metrics[split] = {
            k[len(split) + 1 :]: v for k, v in prediction.metrics.items() if not k.endswith(("_runtime", "per_second"))
        }
        predictions[split] = prediction
    extra_metrics = {}  # extra evaluation sets (dann's labelled target domain): beside, not among, the splits
    for name, dataset in extra_eval.items():
        prediction = trainer.predict(dataset, metric_key_prefix=name)
        extra_metrics[name] = {
            k[len(name) + 1 :]: v for k, v in prediction.metrics.items() if not k.endswith(("_runtime", "per_second"))
        }
    report_split = "test" if "test" in predictions else "validation"
    baseline = {**task.baseline(data, predictions[report_split]), "split": report_split}

    if trainer.is_world_process_zero():
        summary = {
            "label_names": data.label_names,
            "data_sizes": sizes,
            "parameters": parameters,
            "blocks": blocks,
            "adapter": adapter,
            "metrics": metrics,
            "train_runtime": train_runtime,
            "baseline": baseline,
            "hardware": describe_hardware(trainer, state),
            **task.summary_extras(data),
        }
        if extra_metrics:
            summary["extra_evaluations"] = extra_metrics
        if "accuracy" in baseline["scores"]:  # the most frequent class (label set, tag): kept for older readers
            summary["majority_baseline"] = baseline["scores"]["accuracy"]
        write_outputs(out, cfg, task, trainer, data, predictions, report_split, summary, train_output.metrics)
    state.wait_for_everyone()
    print_results(out, {**metrics, **extra_metrics}, baseline, task, state.is_main_process)
    if push and state.is_main_process:
        push_folder(out, push.repo_id, private=push.private, revision=push.revision, token=push.token)
    return RunResult(
        output_dir=out, metrics=metrics, baseline=baseline, model=trainer.model, extra_metrics=extra_metrics
    )


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
    from .transfer import unwrap_peft

    params = list(model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    saved = trainable if unwrap_peft(model) is not model else sum(p.numel() * p.element_size() for p in params)
    return 2 * saved + 2 * trainable


def describe_hardware(trainer, state) -> str:
    """For the model card: `1 process on CPU (2 cores), fp32`, `2 processes on CPU (2 cores), gloo, fp32`,
    `4 processes on NVIDIA H100 80GB HBM3, nccl, bf16`."""
    import torch

    device = trainer.args.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        name = f"CPU ({cores} cores)"
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


def reload_best_model(trainer) -> None:
    """Make `load_best_model_at_end` true for every architecture (Trainer's reload misses renamed weights)."""
    best = trainer.state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and best and load_renamed_weights(Path(best), trainer.model):
        logger.info("reloaded the best checkpoint %s through from_pretrained (renamed weights)", best)


def write_outputs(out, cfg, task, trainer, data, predictions, report_split, summary, train_metrics) -> None:
    """Everything but the weights (saved by Trainer); the completion marker last."""
    trainer.save_state()  # trainer_state.json: log history, best checkpoint
    sections: dict = {}
    for split, prediction in predictions.items():
        for name, value in task.evaluation_report(prediction, data).items():
            sections.setdefault(name, {})[split] = value
    write_json(out / METRICS, {**summary, "train": train_metrics, **sections, "report_split": report_split})
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
