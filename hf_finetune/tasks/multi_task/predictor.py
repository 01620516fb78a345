"""Predict with a multi-task folder: the chosen heads' labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import torch

from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError
from hf_finetune.modeling.backbone import load_backbone, pool
from hf_finetune.tasks.multi_task.folder import HEADS_FILE, MULTITASK_FILE, is_multitask_folder, read_tasks
from hf_finetune.tasks.multi_task.model import MultiTaskModel


class MultiTaskPredictor:
    """A finished multi-task folder, ready to label texts or images for one task or all of them.

    predictor = MultiTaskPredictor("outputs/fashion_mnist_multitask-full")
    predictor.predict(images)                    # every head: [{"garment": "Bag", "garment_score": 0.97, ...}]
    predictor.predict(images, tasks=["category"])
    """

    def __init__(self, folder, batch_size: int = 32, max_seq_length: int = 128):
        from safetensors.torch import load_file

        self.folder = Path(folder).expanduser()
        if not is_multitask_folder(self.folder):
            raise UserError(f"{folder} is not a multi-task model folder (no {MULTITASK_FILE})")
        tasks, weights = read_tasks(self.folder)
        backbone = load_backbone(str(self.folder))
        self.tokenizer, self.image_processor = backbone.tokenizer, backbone.image_processor
        self.model = MultiTaskModel(backbone.model, tasks, weights)
        self.model.heads.load_state_dict(load_file(str(self.folder / HEADS_FILE)), strict=True)
        self.model.eval()
        self.batch_size, self.max_seq_length = batch_size, max_seq_length

    @property
    def tasks(self) -> list[str]:
        return list(self.model.task_names)

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

    def predict(self, inputs: list, tasks=None) -> list[dict]:
        """One row per input: `{task: label, task_score: probability}` for each requested task.
        Inputs are texts for a text encoder; PIL images or image file paths for an image encoder."""
        tasks = self.check_tasks(tasks)
        rows: list[dict] = [{} for _ in inputs]
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                encoded = self._encode(inputs[start : start + self.batch_size])
                features = pool(self.model.encoder(**encoded))
                for task in tasks:
                    probabilities = self.model.heads[task](features).softmax(-1)
                    score, index = probabilities.max(-1)
                    for offset, (s, i) in enumerate(zip(score.tolist(), index.tolist(), strict=True)):
                        rows[start + offset][task] = self.model.label_names[task][i]
                        rows[start + offset][f"{task}_score"] = round(s, 4)
        return rows

    def _encode(self, batch: list) -> dict:
        if self.tokenizer is not None:
            if not all(isinstance(x, str) for x in batch):
                raise UserError(f"{self.folder} is a text model: pass texts")
            return dict(
                self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt"
                )
            )
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
        return {"pixel_values": self.image_processor(images=images, return_tensors="pt")["pixel_values"]}
