"""Multi-task folders and their ONNX exports in `predict` and `evaluate`: one loader, one scorer per head.

A multi-task folder's `MultiTaskPredictor` runs its PyTorch encoder and heads; an export folder of one
(`multitask.json` beside `model.onnx`) gets the same predictor with ONNX Runtime as its forward pass, so
both give the same rows. `evaluate` scores one head with the single-model scorer (`scoring.score_logits`):
a head is a single-label classifier over its own labels.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hf_finetune.errors import UserError
from hf_finetune.inference.backends import (
    ONNX_FP32,
    ONNX_INT8,
    TOKENIZER_FILES,
    OnnxBackend,
    check_export_precision,
    inference_precision,
    is_export_folder,
    load_preprocessors,
)
from hf_finetune.inference.image_inputs import open_image, read_image_inputs
from hf_finetune.inference.parity import run_columns
from hf_finetune.inference.pipeline import read_inputs
from hf_finetune.inference.scoring import parse_gold, score_logits
from hf_finetune.tasks.multi_task import MultiTaskPredictor

IMAGE_CHUNK = 256  # images opened at once (bounded memory), as `predict` does for multi-task folders
SINGLE_LABEL = "single_label"  # what every head is: softmax over its own labels


def onnx_multitask(path: Path, batch_size: int = 32) -> MultiTaskPredictor:
    """The predictor of an export folder's graph at `path` (model.onnx or model_int8.onnx)."""
    folder = path.parent
    image = not any((folder / name).is_file() for name in TOKENIZER_FILES)
    forward = OnnxBackend(path, None).outputs  # one output per task, named by the task
    return MultiTaskPredictor(folder, batch_size, forward=forward, preprocessors=load_preprocessors(folder, image))


def load_multitask(model_dir, batch_size: int = 32, int8: bool = False, precision: str = "auto") -> MultiTaskPredictor:
    """A multi-task folder (PyTorch, in `precision` as `load_for_inference` chooses it) or its export (ONNX
    Runtime; `int8`: the quantised graph)."""
    folder = Path(model_dir).expanduser()
    check_export_precision(folder, precision)
    if not is_export_folder(folder):
        if int8:
            raise UserError(f"--int8 reads an export folder's {ONNX_INT8}; {folder} is a PyTorch model folder")
        choice = inference_precision(precision, folder)
        return MultiTaskPredictor(folder, batch_size=batch_size, precision=choice.precision)
    path = folder / (ONNX_INT8 if int8 else ONNX_FP32)
    if not path.is_file():
        raise UserError(f"{folder} has no {path.name}: export it with --quantize int8, or drop --int8")
    return onnx_multitask(path, batch_size)


def engine(predictor: MultiTaskPredictor) -> str:
    return "onnxruntime" if is_export_folder(predictor.folder) else "pytorch"


def image_logits(predictor: MultiTaskPredictor, sources: list, task: str):
    """(logits of the readable images for `task`, their row numbers, {row: why unreadable})."""
    parts, readable, errors = [], [], {}
    for start in range(0, len(sources), IMAGE_CHUNK):
        images = []
        for offset, source in enumerate(sources[start : start + IMAGE_CHUNK]):
            image, reason = open_image(source)
            if image is None:
                errors[start + offset] = reason
            else:
                readable.append(start + offset)
                images.append(image)
        if images:
            parts.append(predictor.logits(images, [task])[task])
    width = len(predictor.label_names[task])
    return (np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)), readable, errors


def gold_column(requested: str | None, task: str, run_column: str | None, available: list, data: str) -> str:
    """--label_column when given; else the column the run trained this head on, else one named as the task,
    else `label`: the first that the data holds."""
    if requested:
        if requested not in available:
            raise UserError(f"{data} has no column '{requested}' (--label_column); columns: {', '.join(available)}")
        return requested
    tried = [name for name in (run_column, task, "label") if name]
    found = next((name for name in tried if name in available), None)
    if found is None:
        raise UserError(f"{data} has no gold labels for task '{task}' (looked for columns {', '.join(tried)}): "
                        "pass --label_column")  # fmt: skip
    return found


def trained_label_column(folder: Path, task: str) -> str | None:
    """The label column the run that trained `folder` used for `task` (run_config.yaml), if it says."""
    values, _ = run_columns(folder, {})
    names, columns = values.get("multitask_names") or [], values.get("multitask_label_columns") or []
    return dict(zip(names, columns, strict=False)).get(task)


def one_task(predictor: MultiTaskPredictor, tasks: list[str] | None) -> str:
    if not tasks:
        raise UserError(f"{predictor.folder} is a multi-task model: pass --task NAME to score one head (its tasks: "
                        f"{', '.join(predictor.tasks)})")  # fmt: skip
    if len(tasks) != 1 or tasks[0] == "all":
        raise UserError(f"evaluate scores one head at a time: pass one --task NAME, not {', '.join(tasks)}")
    return predictor.check_tasks(tasks)[0]


def evaluate_multitask(predictor: MultiTaskPredictor, data: str, tasks: list[str] | None, columns: dict,
                       split: str = "test") -> dict:  # fmt: skip
    """One head on labelled texts or images: the single-label scores `evaluate` prints for any classifier."""
    task = one_task(predictor, tasks)
    run_column = trained_label_column(predictor.folder, task)
    requested = columns.get("label_column")
    unreadable: dict = {}
    if predictor.modality == "image":
        inputs = read_image_inputs(data, columns["image_column"], split)
        if inputs.labels is not None and not requested:
            column, values = "class sub-folder", inputs.labels
        else:
            column = gold_column(requested, task, run_column, list(inputs.columns), data)
            values = inputs.columns[column]
        logits, readable, errors = image_logits(predictor, inputs.sources, task)
        values = [values[i] for i in readable]
        unreadable = {inputs.names[i]: reason for i, reason in errors.items()}
    else:
        if not Path(data).expanduser().is_file():
            raise UserError(f"--data {data} is not a file: pass a labelled .csv, .tsv, .json, .jsonl or .parquet file")
        texts, _, dataset = read_inputs(data, columns["text_column"], None)
        column = gold_column(requested, task, run_column, dataset.column_names, data)
        values, logits = dataset[column], predictor.logits(texts, [task])[task]
    config = SimpleNamespace(id2label=dict(enumerate(predictor.label_names[task])))
    gold = parse_gold(SINGLE_LABEL, values, config, column)
    result = {"examples": len(gold), "task": task, "label_column": column,
              **score_logits(SINGLE_LABEL, logits, gold, config), "engine": engine(predictor)}  # fmt: skip
    return {**result, "unreadable": unreadable} if unreadable else result
