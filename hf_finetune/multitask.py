"""Multi-task learning: one shared encoder, one linear head per task, trained jointly.

The pieces the `multi_task` task (`hf_finetune.tasks.multi_task`) plugs into the ordinary run:

- `MultiTaskModel`: an `AutoModel` encoder (text or image) and an `nn.ModuleDict` of linear
  heads on its pooled feature (the first token, as `hf-finetune features` pools; a CNN's
  averaged map). Each example carries its task id; a head only ever sees its own task's
  examples, so it only receives its own task's gradients. The loss is the sum over the batch of
  `weight[task] x cross-entropy` of the example's head, divided by the batch size.
- `TaskBatchSampler`: every training batch holds one task; which task comes next is drawn
  with probability p_t proportional to n_t^(1/T) (T = 1 `proportional`, T -> inf `uniform`,
  `temperature` T in between, as in multilingual and T5-style mixing), so a small task is not
  drowned by a big one. An epoch is as many batches as one pass over every task would take.
- `MultiTaskTrainer`: `StrategyTrainer` with that sampler and the multi-task folder format,
  so strategies (freeze_bottom, llrd, l2sp, ...), resuming, the NaN stop and checkpoints work as
  for any run; the encoder's blocks are found as usual (`model.base_model` is the encoder).
- The folder: the encoder through `save_pretrained` (config.json + model.safetensors: a
  plain transformers checkpoint, loadable with `AutoModel`), the heads in `heads.safetensors`,
  and `multitask.json` naming tasks, labels and weights. `MultiTaskPredictor` loads it back
  and predicts one task or all of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hf_finetune.errors import UserError
from hf_finetune.trainer import StrategyTrainer

MULTITASK_FILE = "multitask.json"
HEADS_FILE = "heads.safetensors"
# The column of the combined splits saying which task a row belongs to (an index into the tasks).
TASK_COLUMN = "task_id"
# Logits of the label slots a task does not have (heads differ in size; predictions share one array).
PAD_LOGIT = -1.0e4
SAMPLINGS = ("proportional", "uniform", "temperature")


def feature_size(config) -> int:
    """Width of the pooled feature: `hidden_size` (BERT, ViT), or the last stage's width (ConvNeXt, ResNet)."""
    size = getattr(config, "hidden_size", None)
    if size is None and getattr(config, "hidden_sizes", None):
        size = config.hidden_sizes[-1]
    if size is None:
        raise UserError(f"cannot tell the feature width of a {config.model_type} encoder (no hidden_size)")
    return int(size)


def pool(outputs) -> torch.Tensor:
    """The first token of the last hidden state ([CLS]), or a CNN's feature map averaged over positions."""
    hidden = outputs.last_hidden_state
    return hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden[:, 0]


def flat_label_names(tasks: dict[str, list[str]]) -> list[str]:
    """`task:label` for every head's labels: the run's label list (config.json id2label, resume checks)."""
    return [f"{task}:{label}" for task, labels in tasks.items() for label in labels]


def tasks_from_flat(label_names: list[str]) -> dict[str, list[str]]:
    """Inverse of `flat_label_names` (task names hold no `:`)."""
    tasks: dict[str, list[str]] = {}
    for name in label_names:
        task, label = name.split(":", 1)
        tasks.setdefault(task, []).append(label)
    return tasks


class MultiTaskModel(nn.Module):
    """A shared encoder with one linear head per task; `forward` routes each example to its task's head."""

    def __init__(self, encoder, tasks: dict[str, list[str]], weights: dict[str, float]):
        super().__init__()
        self.encoder = encoder
        self.task_names = list(tasks)
        self.label_names = {task: list(labels) for task, labels in tasks.items()}
        self.weights = {task: float(weights[task]) for task in self.task_names}
        config = encoder.config
        # The folder's config.json says what the outputs are; `check_resumable` compares it with the run's labels.
        config.id2label = dict(enumerate(flat_label_names(tasks)))
        config.label2id = {name: i for i, name in config.id2label.items()}
        self.config = config  # `hf_finetune.layers` reads model_type; Trainer reads a few settings
        self.main_input_name = getattr(encoder, "main_input_name", "input_ids")
        width = feature_size(config)
        self.dropout = nn.Dropout(float(getattr(config, "hidden_dropout_prob", 0.0) or 0.0))
        self.heads = nn.ModuleDict({task: nn.Linear(width, len(labels)) for task, labels in tasks.items()})
        std = float(getattr(config, "initializer_range", 0.02))
        for head in self.heads.values():  # the init transformers gives a new classifier
            nn.init.normal_(head.weight, std=std)
            nn.init.zeros_(head.bias)
        self.max_labels = max(len(labels) for labels in tasks.values())

    @property
    def base_model(self):
        """The pretrained part (`hf_finetune.layers`: everything outside it is the head)."""
        return self.encoder

    def forward(self, task_ids, labels=None, **inputs):
        features = self.dropout(pool(self.encoder(**inputs)))
        logits = features.new_full((len(features), self.max_labels), PAD_LOGIT)
        loss = features.new_zeros(())
        for index, task in enumerate(self.task_names):
            rows = (task_ids == index).nonzero(as_tuple=True)[0]
            if len(rows) == 0:
                continue  # this head is not called, so it gets no gradient from this batch
            task_logits = self.heads[task](features[rows])
            logits[rows, : task_logits.shape[-1]] = task_logits.to(logits.dtype)
            if labels is not None:
                cross_entropy = nn.functional.cross_entropy(task_logits.float(), labels[rows], reduction="sum")
                loss = loss + self.weights[task] * cross_entropy
        outputs = {"logits": logits, "task_ids": task_ids}
        if labels is not None:
            # Divided by the whole batch: a one-task batch gives weight x that task's mean cross-entropy.
            outputs = {"loss": loss / len(features), **outputs}
        return outputs


# --- Which task each training batch comes from ---


@dataclass
class TaskSampling:
    """Training rows per task (contiguous in the combined train split, in task order) and each task's
    probability of giving the next batch."""

    sizes: list[int]
    probabilities: list[float]

    @classmethod
    def build(cls, sizes: list[int], weights: list[float], sampling: str, temperature: float) -> TaskSampling:
        """p_t proportional to n_t^(1/T): T = 1 for `proportional`, T = inf (all equal) for `uniform`.
        A task of weight 0 gets no batches (it would add nothing to the loss)."""
        if sampling not in SAMPLINGS:
            raise UserError(f"multitask_sampling must be one of {', '.join(SAMPLINGS)}, got '{sampling}'")
        exponent = {"proportional": 1.0, "uniform": 0.0}.get(sampling, 1.0 / temperature)
        scores = [n**exponent if w > 0 else 0.0 for n, w in zip(sizes, weights, strict=True)]
        total = sum(scores)
        if total <= 0:
            raise UserError("every task has weight 0: give at least one task a positive multitask_weights entry")
        return cls(sizes=list(sizes), probabilities=[s / total for s in scores])

    def batches_per_epoch(self, batch_size: int) -> int:
        """As many batches as one pass over every trained task's rows takes."""
        return sum(math.ceil(n / batch_size) for n, p in zip(self.sizes, self.probabilities, strict=True) if p > 0)


class TaskBatchSampler(torch.utils.data.Sampler):
    """Batches of one task each: the task drawn by `probabilities`, its rows from a reshuffled cycle.

    Each task's rows are walked in a random order and reshuffled when used up, so an
    oversampled small task repeats its examples only after showing all of them. The order is
    fixed by (seed, epoch), as `SeededLengthGroupedSampler`'s is, so a resumed run sees the batches
    the interrupted one would have.
    """

    def __init__(self, sampling: TaskSampling, batch_size: int, seed: int):
        self.sampling, self.batch_size, self.seed, self.epoch = sampling, batch_size, seed, 0
        self.offsets = [sum(sampling.sizes[:i]) for i in range(len(sampling.sizes))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.sampling.batches_per_epoch(self.batch_size)

    def __iter__(self):
        # Not seed + epoch: seed 42's second epoch would repeat seed 43's first.
        generator = torch.Generator().manual_seed((self.seed << 20) + self.epoch)
        probabilities = torch.tensor(self.sampling.probabilities, dtype=torch.float64)
        tasks = torch.multinomial(probabilities, len(self), replacement=True, generator=generator).tolist()
        streams: dict[int, list[int]] = {}
        for task in tasks:
            size = self.sampling.sizes[task]
            batch: list[int] = []
            while len(batch) < min(self.batch_size, size):
                if not streams.get(task):
                    streams[task] = torch.randperm(size, generator=generator).tolist()
                batch.append(self.offsets[task] + streams[task].pop())
            yield batch
        self.epoch += 1


# --- The folder: encoder (save_pretrained) + heads + multitask.json ---


def save_multitask(model: MultiTaskModel, folder: Path, state_dict: dict | None = None) -> None:
    """Encoder via `save_pretrained` (safetensors), heads in `heads.safetensors`, tasks in `multitask.json`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = state_dict if state_dict is not None else model.state_dict()
    encoder_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    model.encoder.save_pretrained(folder, state_dict=encoder_state)
    heads = {k[len("heads.") :]: v.detach().contiguous().cpu() for k, v in state.items() if k.startswith("heads.")}
    save_file(heads, str(folder / HEADS_FILE), metadata={"format": "pt"})
    description = {
        "tasks": [
            {"name": task, "labels": model.label_names[task], "weight": model.weights[task]}
            for task in model.task_names
        ],
        "pooling": "first token (CNN: mean over positions), dropout, then one linear head per task",
        "encoder": type(model.encoder).__name__,
    }
    (folder / MULTITASK_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")


def is_multitask_folder(folder) -> bool:
    return (Path(folder).expanduser() / MULTITASK_FILE).is_file()


def read_tasks(folder: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """(task -> label names, task -> loss weight) from `multitask.json`."""
    try:
        description = json.loads((folder / MULTITASK_FILE).read_text(encoding="utf-8"))
        entries = description["tasks"]
        return {e["name"]: list(e["labels"]) for e in entries}, {e["name"]: float(e["weight"]) for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder / MULTITASK_FILE} is not a readable multi-task description ({exc})") from None


def load_multitask_weights(folder: Path, model: MultiTaskModel) -> None:
    """Copy a saved folder's encoder and head weights into `model`, strictly (resume, best checkpoint).

    The encoder goes through `from_pretrained`, which maps the legacy weight names some architectures
    are saved under (ViT) to the live ones; a plain `load_state_dict` would silently match nothing."""
    from safetensors.torch import load_file

    from hf_finetune.features import load_backbone

    if not (folder / HEADS_FILE).is_file():
        raise UserError(f"{folder} holds no {HEADS_FILE}: not a multi-task checkpoint")
    encoder = load_backbone(str(folder)).model
    model.encoder.load_state_dict(encoder.state_dict(), strict=True)
    model.heads.load_state_dict(load_file(str(folder / HEADS_FILE)), strict=True)


class MultiTaskPredictor:
    """A finished multi-task folder, ready to label texts or images for one task or all of them.

    predictor = MultiTaskPredictor("outputs/fashion_mnist_multitask-full")
    predictor.predict(images)                    # every head: [{"garment": "Bag", "garment_score": 0.97, ...}]
    predictor.predict(images, tasks=["category"])
    """

    def __init__(self, folder, batch_size: int = 32, max_seq_length: int = 128):
        from safetensors.torch import load_file

        from hf_finetune.features import load_backbone

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

        from hf_finetune.images import to_rgb

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


class MultiTaskTrainer(StrategyTrainer):
    """`StrategyTrainer` whose training batches hold one task each (`TaskBatchSampler`) and whose
    checkpoints and final folder use the multi-task format (`save_multitask`)."""

    def __init__(self, *args, sampling: TaskSampling, **kwargs):
        self.sampling = sampling
        super().__init__(*args, **kwargs)

    def task_batch_sampler(self) -> TaskBatchSampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return TaskBatchSampler(self.sampling, self._train_batch_size, seed)

    def get_train_dataloader(self):
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.task_batch_sampler(),
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def steps_per_epoch(self) -> float:
        batches = self.sampling.batches_per_epoch(self._train_batch_size)
        return max(math.ceil(batches / self.args.world_size) // self.args.gradient_accumulation_steps, 1)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        save_multitask(self.accelerator.unwrap_model(self.model), folder, state_dict)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(folder))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        load_multitask_weights(Path(resume_from_checkpoint), self.model if model is None else model)

    def _load_best_model(self) -> None:
        load_multitask_weights(Path(self.state.best_model_checkpoint), self.model)
