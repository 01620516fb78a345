"""One fine-tuning run, from a resolved config to a finished output folder.

The order matters: every input is checked (data, columns, labels, checkpoint,
strategy) before the output folder is touched, so bad input never leaves a
half-written folder; the completion marker is written last, so an interrupted run
is never mistaken for a finished model. The training loop itself is
`transformers.Trainer`; this module only assembles it and reports on it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .adapters import is_adapter_folder, save_adapter_config
from .checkpoints import check_resumable, load_renamed_weights, plan_resume, remove_incomplete
from .config import RunConfig, write_run_config
from .hub import keep_trainer_from_pushing, push_folder, push_settings
from .interruption import Interrupted
from .metrics import (
    majority_baseline,
    majority_label_set_baseline,
    multilabel_predictions,
    multilabel_report,
    per_class_report,
    sigmoid,
    softmax,
)
from .model_card import build_model_card
from .outputs import (
    METRICS,
    MISCLASSIFIED,
    RUN_CONFIG,
    check_free_space,
    check_output_dir,
    check_writable,
    mark_complete,
    prepare_output_dir,
    write_json,
)
from .plots import save_confusion_matrix_png, save_loss_curves_png
from .tasks import TASKS
from .trainer import StrategyTrainer
from .transfer import TransferPlan, format_summary, resolve_strategies

logger = logging.getLogger("hf_finetune")


@dataclass
class RunResult:
    output_dir: Path
    metrics: dict  # split -> metric name -> value
    majority_baseline: float
    model: object = field(default=None, repr=False)  # the trained model, in memory (on every process)


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


def run(cfg: RunConfig) -> RunResult:
    from transformers import EarlyStoppingCallback, set_seed

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
    checkpoint = plan_resume(cfg, out, RUN_CONFIG)
    strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
    task.check_model_inputs()
    data = task.load_data()
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

    if state.is_main_process:
        prepare_output_dir(out, cfg.run.overwrite_output_dir)
        remove_incomplete(out)
        write_run_config(cfg, out / RUN_CONFIG)
        for name, text in data.extra_outputs.items():
            (out / name).write_text(text, encoding="utf-8")
    state.wait_for_everyone()
    keep_trainer_from_pushing(cfg.training)  # we push once at the end; no token in pickled training args

    callbacks = [cb for s in strategies for cb in s.callbacks()]
    if cfg.run.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.run.early_stopping_patience))
    trainer = StrategyTrainer(
        model=model,
        plan=plan,
        args=cfg.training,
        data_collator=task.data_collator(processor),
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=processor,
        compute_metrics=task.compute_metrics(),
        callbacks=callbacks,
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
    train_output = train_or_stop(trainer, checkpoint, cfg.run.resume, out)
    train_runtime = time.time() - started
    reload_best_model(trainer)
    trainer.save_model(str(out))
    adapter = is_adapter_folder(out)
    if trainer.is_world_process_zero():
        if adapter:
            # Adapters alone do not say what the labels are; the config does (`hf_finetune.adapters`).
            save_adapter_config(model, out)
        # Trainer pickles TrainingArguments beside the model (hub_token was blanked before the Trainer
        # saw it); run_config.yaml replaces it with a readable file, so the final folder holds no pickle.
        (out / "training_args.bin").unlink(missing_ok=True)

    metrics, reports = {}, {}
    for split in ("validation", "test"):
        if split not in encoded:
            continue
        prediction = trainer.predict(encoded[split], metric_key_prefix=split)
        metrics[split] = {
            k[len(split) + 1 :]: v for k, v in prediction.metrics.items() if not k.endswith(("_runtime", "per_second"))
        }
        reports[split] = (prediction, evaluation_report(prediction, data.label_names, cfg.data))
    report_split = "test" if "test" in reports else "validation"
    train_labels, eval_labels = data.splits["train"][cfg.data.label_column], reports[report_split][0].label_ids
    if cfg.data.multi_label:
        baseline = majority_label_set_baseline(train_labels, eval_labels)
    else:
        baseline = majority_baseline(train_labels, eval_labels)

    if trainer.is_world_process_zero():
        summary = {
            "label_names": data.label_names,
            "data_sizes": sizes,
            "parameters": parameters,
            "blocks": blocks,
            "adapter": adapter,
            "metrics": metrics,
            "train_runtime": train_runtime,
            "majority_baseline": baseline,
            "hardware": describe_hardware(trainer, state),
        }
        write_outputs(out, cfg, task, trainer, data, reports, report_split, summary, train_output.metrics)
    state.wait_for_everyone()
    print_results(out, metrics, baseline, report_split, task.pipeline_tag, state.is_main_process)
    if push and state.is_main_process:
        push_folder(out, push.repo_id, private=push.private, revision=push.revision, token=push.token)
    return RunResult(output_dir=out, metrics=metrics, majority_baseline=baseline, model=trainer.model)


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


def predicted_labels(logits: np.ndarray, data_args):
    """Class ids (single-label: argmax) or a 0/1 indicator array (multi-label: sigmoid >= threshold)."""
    if data_args.multi_label:
        return multilabel_predictions(logits, data_args.multi_label_threshold)
    return logits.argmax(-1)


def evaluation_report(prediction, label_names: list[str], data_args) -> dict:
    predicted = predicted_labels(prediction.predictions, data_args)
    if data_args.multi_label:
        return multilabel_report(prediction.label_ids, predicted, label_names)
    return per_class_report(prediction.label_ids, predicted, label_names)


def write_outputs(out, cfg, task, trainer, data, reports, report_split, summary, train_metrics) -> None:
    """Everything but the weights (saved by Trainer); the completion marker last."""
    trainer.save_state()  # trainer_state.json: log history, best checkpoint
    prediction, report = reports[report_split]
    write_json(
        out / METRICS,
        {
            **summary,
            "train": train_metrics,
            "per_class": {split: r["per_class"] for split, (_, r) in reports.items()},
            "majority_baseline_split": report_split,
        },
    )
    cm = report["confusion_matrix"]
    write_json(out / "confusion_matrix.json", {"split": report_split, **cm})
    if "matrix" in cm:  # multi-label has one 2x2 matrix per label (in the JSON), no class-by-class picture
        title = f"{out.name} ({report_split})"
        save_confusion_matrix_png(cm["labels"], cm["matrix"], out / "confusion_matrix.png", title)
    save_loss_curves_png(trainer.state.log_history, out / "loss_curves.png")
    raw_split = data.splits[report_split]
    if cfg.data.multi_label:
        write_misclassified_multilabel(
            out / MISCLASSIFIED, task, raw_split, prediction, data.label_names, cfg.data.multi_label_threshold
        )
    else:
        write_misclassified(out / MISCLASSIFIED, task, raw_split, prediction, data.label_names)
    build_model_card(cfg, task, summary).save(out / "README.md")
    mark_complete(out, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": summary["metrics"]})


def write_misclassified(path: Path, task, raw_split, prediction, label_names: list[str]) -> None:
    """One JSON line per wrong prediction, most confident mistakes first: where to look for label noise."""
    probabilities = softmax(prediction.predictions)
    predicted = probabilities.argmax(-1)
    wrong = np.flatnonzero(predicted != prediction.label_ids)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])]
    with open(path, "w", encoding="utf-8") as handle:
        for i in wrong:
            row = {
                **task.describe_example(raw_split[int(i)]),
                "label": label_names[prediction.label_ids[i]],
                "predicted": label_names[predicted[i]],
                "score": round(float(probabilities[i, predicted[i]]), 4),
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_misclassified_multilabel(path: Path, task, raw_split, prediction, label_names, threshold: float) -> None:
    """One JSON line per example whose predicted label set differs from the gold set, worst first
    (largest gap between a label's probability and its gold 0/1)."""
    probabilities = sigmoid(prediction.predictions)
    gold = prediction.label_ids.astype(int)
    predicted = multilabel_predictions(prediction.predictions, threshold)
    wrong = np.flatnonzero((predicted != gold).any(axis=1))
    gap = np.abs(probabilities - gold).max(axis=1)
    wrong = wrong[np.argsort(-gap[wrong])]
    with open(path, "w", encoding="utf-8") as handle:
        for i in wrong:
            row = {
                **task.describe_example(raw_split[int(i)]),
                "labels": [label_names[j] for j in np.flatnonzero(gold[i])],
                "predicted": [label_names[j] for j in np.flatnonzero(predicted[i])],
                "scores": {label_names[j]: round(float(p), 4) for j, p in enumerate(probabilities[i])},
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def print_results(out: Path, metrics: dict, baseline: float, baseline_split: str, pipeline_tag: str, is_main: bool):
    if not is_main:
        return
    keys = ["accuracy", "macro_f1", "macro_precision", "macro_recall", "loss"]
    if any("micro_f1" in values for values in metrics.values()):  # multi-label
        keys.insert(2, "micro_f1")
    print()
    print(f"{'split':<12}" + "".join(f"{k:>17}" for k in keys))
    for split, values in metrics.items():
        print(f"{split:<12}" + "".join(f"{values.get(k, float('nan')):>17.4f}" for k in keys))
    print(f"majority-class baseline accuracy ({baseline_split}): {baseline:.4f}")
    print(f"model saved to {out}")
    print(f'load it with: pipeline("{pipeline_tag}", model="{out}")')
