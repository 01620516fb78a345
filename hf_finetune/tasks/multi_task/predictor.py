"""Predict with a multi-task folder: the chosen heads' labels and probabilities.

The forward pass is a seam: by default the folder's PyTorch encoder and heads (`AllHeads`), or any callable
from the encoded batch (numpy arrays) to one logits array per task; `hf-finetune predict` on an ONNX export
passes ONNX Runtime's session there, so both paths batch, encode and post-process with the same code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import softmax
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.settings.precision import autocast
from hf_finetune.tasks.multi_task.folder import HEADS_FILE, MULTITASK_FILE, is_multitask_folder, read_tasks
from hf_finetune.tasks.multi_task.model import AllHeads, MultiTaskModel

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what `AllHeads` (and so the export) takes


class TorchHeads:
    """`AllHeads` under `torch.inference_mode` in `precision` (fp32, or bf16/fp16 autocast): numpy inputs in,
    `{task: logits}` (numpy, fp32) out."""

    def __init__(self, model: MultiTaskModel, precision: str = "fp32"):
        self.module, self.precision = AllHeads(model).eval(), precision
        self.engine = "pytorch" if precision == "fp32" else f"pytorch {precision}"

    def __call__(self, inputs: dict) -> dict[str, np.ndarray]:
        device = next(self.module.parameters()).device
        with torch.inference_mode(), autocast(self.precision, device.type):
            outputs = self.module(**{k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items()})
        return {task: out.float().numpy() for task, out in zip(self.module.task_names, outputs, strict=True)}


class MultiTaskPredictor:
    """A finished multi-task folder, ready to label texts or images for one task or all of them.

    predictor = MultiTaskPredictor("outputs/fashion_mnist_multitask-full")
    predictor.predict(images)                    # every head: [{"garment": "Bag", "garment_score": 0.97, ...}]
    predictor.predict(images, tasks=["category"])
    predictor.logits(images, ["category"])       # {"category": array (n, 3)}

    `forward` and `preprocessors` (tokenizer, image processor) replace the folder's PyTorch model: an export
    folder holds no weights, only the graph ONNX Runtime runs (`hf_finetune.inference.multitask`).
    """

    def __init__(
        self, folder, batch_size: int = 32, max_seq_length: int = 128, forward=None, preprocessors=None,
        precision: str = "fp32",
    ):  # fmt: skip
        from safetensors.torch import load_file

        self.folder = Path(folder).expanduser()
        if not is_multitask_folder(self.folder):
            raise UserError(f"{folder} is not a multi-task model folder (no {MULTITASK_FILE})")
        tasks, weights = read_tasks(self.folder)
        self.label_names = tasks
        if forward is None:
            backbone = load_backbone(str(self.folder))
            preprocessors = (backbone.tokenizer, backbone.image_processor)
            model = MultiTaskModel(backbone.model, tasks, weights)
            model.heads.load_state_dict(load_file(str(self.folder / HEADS_FILE)), strict=True)
            forward = TorchHeads(model.eval(), precision)
        self.forward = forward
        self.tokenizer, self.image_processor = preprocessors
        self.batch_size, self.max_seq_length = batch_size, max_seq_length

    @property
    def tasks(self) -> list[str]:
        return list(self.label_names)

    @property
    def modality(self) -> str:
        return "text" if self.tokenizer is not None else "image"

    def check_tasks(self, tasks) -> list[str]:
        """The requested task names (None or "all": every task), each checked against the folder's."""
        if tasks is None or tasks == "all" or tasks == ["all"]:
            return self.tasks
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise UserError(f"unknown task '{unknown[0]}' for {self.folder}; its tasks: {', '.join(self.tasks)}")
        return tasks

    def logits(self, inputs: list, tasks=None) -> dict[str, np.ndarray]:
        """`{task: logits (n, labels)}` for the requested tasks, rows in input order."""
        tasks = self.check_tasks(tasks)
        parts: dict[str, list] = {task: [] for task in tasks}
        for start in range(0, len(inputs), self.batch_size):
            outputs = self.forward(self.encode(inputs[start : start + self.batch_size]))
            for task in tasks:
                parts[task].append(np.asarray(outputs[task], dtype=np.float32))
        empty = {task: np.zeros((0, len(self.label_names[task])), dtype=np.float32) for task in tasks}
        return {task: np.concatenate(parts[task]) if parts[task] else empty[task] for task in tasks}

    def predict(self, inputs: list, tasks=None) -> list[dict]:
        """One row per input: `{task: label, task_score: probability}` for each requested task.
        Inputs are texts for a text encoder; PIL images or image file paths for an image encoder."""
        rows: list[dict] = [{} for _ in inputs]
        for task, logits in self.logits(inputs, tasks).items():
            probabilities = softmax(logits)
            for row, index, score in zip(rows, probabilities.argmax(-1), probabilities.max(-1), strict=True):
                row[task] = self.label_names[task][int(index)]
                row[f"{task}_score"] = round(float(score), 4)
        return rows

    def encode(self, batch: list) -> dict[str, np.ndarray]:
        """One batch as the encoder's inputs (numpy): texts padded to the batch's longest, or pixel values."""
        if self.tokenizer is not None:
            if not all(isinstance(x, str) for x in batch):
                raise UserError(f"{self.folder} is a text model: pass texts")
            encoded = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_seq_length,
                                     return_tensors="np")  # fmt: skip
            return {k: np.asarray(v) for k, v in encoded.items() if k in TEXT_INPUTS}
        from PIL import Image

        images = []
        for item in batch:
            if isinstance(item, (str, Path)):
                try:
                    item = Image.open(item)
                    item.load()
                except (OSError, ValueError) as exc:
                    raise UserError(f"cannot read image {item}: {exc}") from None
            images.append(to_rgb(item))
        return {"pixel_values": self.image_processor(images=images, return_tensors="np")["pixel_values"]}
