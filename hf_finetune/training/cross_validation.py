"""k-fold cross-validation of a fine-tuning run (`cv_folds: k`): k fresh models, mean and std.

On small data one validation split is one lucky (or unlucky) draw. Here the train split is
cut into k stratified folds (scikit-learn's `StratifiedKFold`, seeded); fold i is a normal
`training.run` with the other folds as train and fold i as validation (best epoch, early
stopping), a fresh model, training seed `seed + i`, and the data set's test split as test. Each
fold is a complete run folder (`output_dir/fold-<i>`); a finished fold is skipped when the
command is repeated, so an interrupted CV resumes. `cv_metrics.json` (written last) holds
every fold's metrics and seeds and the mean and std per split and metric.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_finetune.data.splits import LabelledData, stratified_folds
from hf_finetune.errors import UserError
from hf_finetune.outputs import METRICS, check_writable, is_finished, write_json
from hf_finetune.tasks import TASKS
from hf_finetune.training.run import run, setup_logging

logger = logging.getLogger("hf_finetune")
CV_METRICS = "cv_metrics.json"


@dataclass
class CVResult:
    output_dir: Path
    folds: list[dict]  # per fold: index, seed, output_dir, sizes, metrics {split: {metric: value}}
    summary: dict  # split -> metric -> {"mean", "std"}


def fold_config(cfg, fold: int, out: Path):
    """The run config of one fold: its own folder and seed, CV off (a fold is a plain run)."""
    fold_cfg = copy.deepcopy(cfg)
    fold_cfg.run.cv_folds = 0
    fold_cfg.training.output_dir = str(out / f"fold-{fold}")
    fold_cfg.training.output_dir_given = True
    fold_cfg.training.seed = cfg.training.seed + fold
    return fold_cfg


def summarise_folds(folds: list[dict]) -> dict:
    """split -> metric -> mean and (population) std over the folds."""
    summary: dict = {}
    for split in folds[0]["metrics"]:
        for metric in folds[0]["metrics"][split]:
            values = [f["metrics"][split][metric] for f in folds if metric in f["metrics"].get(split, {})]
            if values and all(isinstance(v, (int, float)) for v in values):
                summary.setdefault(split, {})[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return summary


def run_cv(cfg) -> CVResult:

    k = cfg.run.cv_folds
    setup_logging(cfg.training.distributed_state.is_main_process)
    if cfg.data.multi_label or cfg.run.task not in ("text_classification", "image_classification"):
        raise UserError("cv_folds stratifies by one label: it is for single-label text or image classification")
    out = Path(cfg.training.output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output_dir {out} is a file; choose a folder path")
    check_writable(out)
    task = TASKS.get(cfg.run.task)(cfg)
    task.check_model_inputs()
    data = task.load_data()
    train = data.splits["train"]
    folds_idx = stratified_folds(train[cfg.data.label_column], k, cfg.training.seed)
    logger.info(
        "%d-fold cross-validation over %d training rows (stratified, seed %d)", k, len(train), cfg.training.seed
    )
    folds = []
    for i, (train_idx, held_idx) in enumerate(folds_idx):
        fold_cfg = fold_config(cfg, i, out)
        fold_out = Path(fold_cfg.training.output_dir)
        if is_finished(fold_out) and not cfg.run.overwrite_output_dir:
            logger.info("fold %d/%d is finished in %s: skipped", i + 1, k, fold_out)
            metrics = json.loads((fold_out / METRICS).read_text(encoding="utf-8"))["metrics"]
        else:
            logger.info("fold %d/%d: train %d, validation %d, seed %d", i + 1, k, len(train_idx), len(held_idx),
                        fold_cfg.training.seed)  # fmt: skip
            splits = {"train": train.select(train_idx), "validation": train.select(held_idx)}
            if "test" in data.splits:
                splits["test"] = data.splits["test"]
            fold_data = LabelledData(splits, data.label_names, data.source, dict(data.extra_outputs))
            metrics = run(fold_cfg, data=fold_data).metrics
        folds.append({"fold": i, "seed": fold_cfg.training.seed, "output_dir": str(fold_out),
                      "sizes": {"train": len(train_idx), "validation": len(held_idx)}, "metrics": metrics})  # fmt: skip
    summary = summarise_folds(folds)
    if cfg.training.distributed_state.is_main_process:
        write_json(
            out / CV_METRICS, {"folds_k": k, "split_seed": cfg.training.seed, "folds": folds, "summary": summary}
        )
        print_summary(summary, k, out)
    return CVResult(out, folds, summary)


def print_summary(summary: dict, k: int, out: Path) -> None:
    print(f"\n{k}-fold cross-validation (mean +/- std over folds)")
    for split, metrics in summary.items():
        shown = ", ".join(
            f"{m} {v['mean']:.4f} +/- {v['std']:.4f}" for m, v in metrics.items() if m in ("accuracy", "macro_f1")
        )
        print(f"  {split:<11} {shown}")
    print(f"per-fold metrics: {out / CV_METRICS}")
