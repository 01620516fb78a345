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

from torch import nn

from hf_finetune.modeling.backbone import feature_size, pool

# The column of the combined splits saying which task a row belongs to (an index into the tasks).
TASK_COLUMN = "task_id"
# Logits of the label slots a task does not have (heads differ in size; predictions share one array).
PAD_LOGIT = -1.0e4


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
        self.config = config  # `hf_finetune.modeling.layers` reads model_type; Trainer reads a few settings
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
        """The pretrained part (`hf_finetune.modeling.layers`: everything outside it is the head)."""
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


class AllHeads(nn.Module):
    """Every head on every example: `forward(input_ids, ...)` -> one logits tensor per task, in task order.

    The view `hf-finetune export` traces (one ONNX graph, one output per task) and the PyTorch path of
    `MultiTaskPredictor` runs, so both compute the same thing; training's `forward` routes each example
    to its own head only, which a deployed model cannot do (it does not know the task of a new input)."""

    def __init__(self, model: MultiTaskModel):
        super().__init__()
        self.encoder, self.heads, self.task_names = model.encoder, model.heads, list(model.task_names)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixel_values=None):
        # Named inputs, not **kwargs: the ONNX exporter's dynamic shapes are given per named argument.
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "pixel_values": pixel_values}  # fmt: skip
        features = pool(self.encoder(**{name: value for name, value in given.items() if value is not None}))
        return tuple(self.heads[task](features) for task in self.task_names)


# --- Which task each training batch comes from ---


# --- The folder: encoder (save_pretrained) + heads + multitask.json ---
