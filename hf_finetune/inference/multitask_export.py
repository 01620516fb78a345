"""`hf-finetune export` of a multi-task folder: one ONNX graph, the shared encoder and every head, one
output per task (named by the task), checked against PyTorch before anything is written at `--out`.

One graph, not one per head: the encoder is most of the work and all of the file, and a deployed model
that answers several questions per input should encode it once. The export folder keeps `multitask.json`
(tasks and labels), the encoder's config and the tokenizer or image processor, so `predict --model
EXPORT --task NAME|all` reads it as it reads the trained folder (`inference.multitask`).

Parity: fp32 logits of every head against PyTorch's within `--tolerance`, as for single models. int8 is
judged per head by its agreement with fp32's predictions on the same rows (fp32 = 100 points); the worst
head counts, and the 1-point rule of single models applies to it. Agreement rather than accuracy: the
parity rows of a multi-task run have no single gold column, and every changed prediction counts against
int8, right or wrong, which makes the rule stricter, not looser.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from hf_finetune.errors import UserError
from hf_finetune.inference.backends import ONNX_FP32, ONNX_INT8
from hf_finetune.inference.multitask import onnx_multitask
from hf_finetune.inference.onnx_export import (
    DEFAULT_TOLERANCE,
    EXPORTER,
    MAX_INT8_DROP,
    apply_int8_rule,
    check_export_request,
    dynamic_axes,
    export_graph,
    quantize_int8,
    size_mb,
    timed,
    versions,
    write_staged,
)
from hf_finetune.inference.parity import opened_rows
from hf_finetune.tasks.multi_task import MULTITASK_FILE, MultiTaskPredictor

METRIC = "agreement_with_fp32"  # the worst head's share of rows predicted as the fp32 reference predicts them


def agreement(logits: dict, reference: dict) -> dict[str, float]:
    """Per task: the percentage of rows whose predicted label is the reference's."""
    return {task: round(100 * float((logits[task].argmax(-1) == reference[task].argmax(-1)).mean()), 4)
            for task in reference}  # fmt: skip


def check_fp32(reference: MultiTaskPredictor, staging: Path, inputs: list, where: str, tolerance: float):
    """Every head's fp32 ONNX logits against PyTorch's; a difference above `tolerance` stops the export."""
    ref, torch_seconds = timed(reference.logits, inputs)
    logits, seconds = timed(onnx_multitask(staging / ONNX_FP32, reference.batch_size).logits, inputs)
    diffs = {task: float(np.abs(logits[task] - ref[task]).max()) for task in ref}
    worst = max(diffs, key=lambda task: np.inf if np.isnan(diffs[task]) else diffs[task])  # NaN: the worst
    if not all(d <= tolerance for d in diffs.values()):  # also catches NaN
        raise UserError(f"the fp32 ONNX model's '{worst}' logits differ from PyTorch's by up to {diffs[worst]:.3g} "
                        f"(tolerance {tolerance:g}) on {where}: the export is not faithful, nothing was "
                        "written")  # fmt: skip
    per_task = agreement(logits, ref)
    section = {"file": ONNX_FP32, "max_abs_logit_diff_vs_pytorch": diffs[worst], "per_task_max_abs_logit_diff": diffs,
               "tolerance": tolerance, "metric": METRIC, "pytorch": 100.0, "onnx": min(per_task.values()),
               "per_task": per_task, "seconds": {"pytorch": round(torch_seconds, 3), "onnx": round(seconds, 3)},
               "size_mb": size_mb(staging / ONNX_FP32)}  # fmt: skip
    return section, ref


def check_int8(reference: MultiTaskPredictor, staging: Path, inputs: list, where: str, fp32: dict, ref: dict,
               accept: bool) -> dict:  # fmt: skip
    """Quantise, then every head's agreement with fp32 on the same rows; the worst head meets the 1-point rule."""
    quantize_int8(staging / ONNX_FP32, staging / ONNX_INT8)
    logits, seconds = timed(onnx_multitask(staging / ONNX_INT8, reference.batch_size).logits, inputs)
    per_task = agreement(logits, ref)
    value = min(per_task.values())
    section = {"file": ONNX_INT8, "metric": METRIC, "fp32": fp32["onnx"], "int8": value, "per_task": per_task,
               "drop_points": round(fp32["onnx"] - value, 4), "max_drop_points": MAX_INT8_DROP,
               "max_abs_logit_diff_vs_fp32": max(float(np.abs(logits[t] - ref[t]).max()) for t in ref),
               "seconds": round(seconds, 3), "size_mb": size_mb(staging / ONNX_INT8), "refused": False,
               "warning": None}  # fmt: skip
    return apply_int8_rule(section, [staging / ONNX_INT8], where, accept)


def save_folder_files(folder: Path, reference: MultiTaskPredictor, staging: Path) -> None:
    """What `predict` reads besides the graph: tasks and labels, the encoder's config, tokenizer or processor."""
    for name in (MULTITASK_FILE, "config.json"):
        shutil.copyfile(folder / name, staging / name)
    (reference.tokenizer or reference.image_processor).save_pretrained(staging)


def export_multitask(
    model_dir: str, out: str, fmt: str = "onnx", quantize: str | None = None, data: str | None = None,
    columns: dict | None = None, samples: int = 200, tolerance: float = DEFAULT_TOLERANCE,
    accept_int8_drop: bool = False, batch_size: int = 32,
) -> dict:  # fmt: skip
    """Export a multi-task folder, check every head, optionally quantise; returns the export report."""
    folder, out = Path(model_dir).expanduser(), Path(out).expanduser()
    check_export_request(folder, out, fmt, quantize, samples)
    reference = MultiTaskPredictor(folder, batch_size=batch_size)
    inputs, rows = opened_rows(folder, reference.modality, data, columns or {}, samples)
    source = rows.source
    where, image = f"{len(inputs)} rows of {source}", reference.modality == "image"
    example = reference.encode(inputs[:2])

    def build(staging: Path) -> dict:
        save_folder_files(folder, reference, staging)
        started = time.perf_counter()
        export_graph(reference.forward.module, example, staging / ONNX_FP32, image, output_names=tuple(reference.tasks))
        export_seconds = time.perf_counter() - started
        fp32, ref = check_fp32(reference, staging, inputs, where, tolerance)
        int8 = check_int8(reference, staging, inputs, where, fp32, ref, accept_int8_drop) if quantize else None
        return {
            "source_model": str(folder.resolve()), "adapters_merged": False, "format": fmt, "head": "multi_task",
            "problem": "single_label", "tasks": reference.label_names, "exporter": EXPORTER,
            "dynamic_axes": dynamic_axes(image), "input_names": list(example), "output_names": reference.tasks,
            "parity_rows": {"count": len(inputs), "source": source, "gold_labels": False}, "fp32": fp32,
            "int8": int8, "export_seconds": round(export_seconds, 1), "versions": versions(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }  # fmt: skip

    return write_staged(out, build)
