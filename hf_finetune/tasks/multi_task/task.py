"""Multi-task classification: one shared encoder (text or image), one head per task, trained jointly.

Each task is a label column of its own (and optionally its own data set and training size); the
rows of every task go through the ordinary loader of text or image classification, so columns,
labels, validation hold-out and subsets are checked and drawn exactly as for a single-task run
with the same settings (which is what makes the single-task comparison fair). The tasks' splits
are then stacked with a `task_id` column; training batches hold one task each, drawn by
`multitask_sampling`; each head is scored on its own task's validation and test rows.
Model, sampler, folder format and predictor live in `hf_finetune.tasks.multi_task`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from dataclasses import dataclass, field

from hf_finetune.data.images import ImageTransform, collate_images
from hf_finetune.data.splits import LabelledData, encode_splits
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import classification_scores, majority_baseline, per_class_report, softmax
from hf_finetune.evaluation.mistakes import write_lines
from hf_finetune.evaluation.plots import save_confusion_matrix_png
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.outputs import MISCLASSIFIED, write_json
from hf_finetune.tasks import TASKS, register_task
from hf_finetune.tasks.base import Task
from hf_finetune.tasks.multi_task.model import TASK_COLUMN, MultiTaskModel, flat_label_names, tasks_from_flat
from hf_finetune.tasks.multi_task.sampler import SAMPLINGS, TaskSampling
from hf_finetune.tasks.multi_task.trainer import MultiTaskTrainer

logger = logging.getLogger("hf_finetune")
INPUT_KINDS = {"text": "text_classification", "image": "image_classification"}
# Strategies that replace or wrap the whole model (PEFT wrappers, a fresh model of the checkpoint's class).
UNSUPPORTED_STRATEGIES = ("lora", "ia3", "scratch")
TASK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass
class MultiTaskArguments:
    """Options of the `multi_task` task: one entry per task in each list, in the same order."""

    multitask_names: list[str] = field(
        default_factory=list,
        metadata={"help": "Name of each task (head), e.g. `[garment, category]`; letters, digits, `_` and `-`."},
    )
    multitask_label_columns: list[str] = field(
        default_factory=list, metadata={"help": "The label column of each task, in `multitask_names` order."}
    )
    multitask_datasets: list[str] = field(
        default_factory=list,
        metadata={"help": "The data set of each task (same forms as dataset_name). Default: dataset_name for all."},
    )
    multitask_weights: list[float] = field(
        default_factory=list,
        metadata={
            "help": "Loss weight of each task: a batch of task t adds weight_t x its mean cross-entropy. A weight "
            "of 0 trains nothing for that task (it draws no batches) but it is still evaluated. Default: 1 each."
        },
    )
    multitask_max_train_samples: list[int] = field(
        default_factory=list,
        metadata={"help": "Training rows of each task (a seeded subset). Default: max_train_samples for all."},
    )
    multitask_sampling: str = field(
        default="temperature",
        metadata={
            "help": "Which task the next training batch comes from: `proportional` (p_t ~ n_t: a small task is "
            "drowned by a big one), `uniform` (every task alike: a small task repeats often) or `temperature` "
            "(p_t ~ n_t^(1/T), in between; Arivazhagan et al. 2019, https://arxiv.org/abs/1907.05019)."
        },
    )
    multitask_temperature: float = field(
        default=2.0, metadata={"help": "T of `temperature` sampling: 1 is proportional, large T nears uniform."}
    )
    multitask_input_kind: str = field(
        default="text", metadata={"help": "What the shared encoder reads: `text` (text_column) or `image`."}
    )


@register_task
class MultiTask(Task):
    name = "multi_task"
    summary = "several heads on one shared encoder (text or image), trained jointly: one label column per head"
    Arguments = MultiTaskArguments

    def __init__(self, cfg):
        super().__init__(cfg)
        self.args = args = cfg.strategy_options(MultiTaskArguments)
        names = list(args.multitask_names)
        if not names:
            raise UserError("multi_task needs its tasks: set multitask_names and multitask_label_columns in the recipe")
        bad = [n for n in names if not TASK_NAME.fullmatch(n)]
        if bad:
            raise UserError(f"task name '{bad[0]}' must start with a letter and hold only letters, digits, _ and -")
        if len(set(names)) != len(names):
            raise UserError(f"multitask_names names a task twice: {', '.join(names)}")
        for option in (
            "multitask_label_columns",
            "multitask_datasets",
            "multitask_weights",
            "multitask_max_train_samples",
        ):
            values = getattr(args, option)
            required = option == "multitask_label_columns"
            if (values or required) and len(values) != len(names):
                raise UserError(
                    f"{option} has {len(values)} entries but there are {len(names)} tasks ({', '.join(names)}); "
                    "give one per task, in the same order"
                )
        if any(w < 0 for w in args.multitask_weights):
            raise UserError(f"multitask_weights must not be negative, got {list(args.multitask_weights)}")
        if any(n < 1 for n in args.multitask_max_train_samples):
            raise UserError(
                f"multitask_max_train_samples must be at least 1, got {list(args.multitask_max_train_samples)}"
            )
        if args.multitask_sampling not in SAMPLINGS:
            raise UserError(
                f"multitask_sampling must be one of {', '.join(SAMPLINGS)}, got '{args.multitask_sampling}'"
            )
        if not args.multitask_temperature > 0:
            raise UserError(f"multitask_temperature must be positive, got {args.multitask_temperature}")
        if args.multitask_input_kind not in INPUT_KINDS:
            raise UserError(f"multitask_input_kind must be text or image, got '{args.multitask_input_kind}'")
        if cfg.data.multi_label:
            raise UserError("multi_task heads are single-label; remove --multi_label")
        if cfg.run.cv_folds:
            raise UserError("cv_folds is not supported for multi_task (folds would mix the tasks); remove it")
        refused = [s for s in cfg.strategy.strategy_names if s in UNSUPPORTED_STRATEGIES]
        if refused:
            raise UserError(
                f"strategy {refused[0]} replaces or wraps the whole model, which multi_task does not support; use "
                "full, linear_probe, freeze_bottom, gradual_unfreeze, llrd or l2sp"
            )
        self.names = names
        self.weights = dict(zip(names, args.multitask_weights or [1.0] * len(names), strict=True))
        # Text or image classification supplies the inputs: processor, checks, encoding, examples.
        self.inputs = self._input_task(cfg)
        self.example_input = self.inputs.example_input
        self.pipeline_tag = self.inputs.pipeline_tag
        # Every input column reaches the collator (the model takes **inputs), and each unused head
        # is simply not called: DDP must be told some parameters may get no gradient in a step.
        cfg.training.remove_unused_columns = False
        cfg.training.ddp_find_unused_parameters = True
        self.sampling: TaskSampling | None = None

    def _input_task(self, cfg):

        return TASKS.get(INPUT_KINDS[self.args.multitask_input_kind])(cfg)

    def task_config(self, index: int):
        """The run's config with task `index`'s data settings: its label column, data set and training size."""
        args = self.args
        data = dataclasses.replace(
            self.cfg.data,
            label_column=args.multitask_label_columns[index],
            dataset_name=args.multitask_datasets[index] if args.multitask_datasets else self.cfg.data.dataset_name,
            max_train_samples=(
                args.multitask_max_train_samples[index]
                if args.multitask_max_train_samples
                else self.cfg.data.max_train_samples
            ),
        )
        cfg = copy.copy(self.cfg)
        cfg.data = data
        return cfg

    @property
    def metric_keys(self):
        per_task = tuple(f"{t}_{m}" for t in self.names for m in ("accuracy", "macro_f1"))
        return ("accuracy", "macro_f1", *per_task)

    @property
    def target_column(self) -> str:
        return ", ".join(f"{t}: {c}" for t, c in zip(self.names, self.args.multitask_label_columns, strict=True))

    def check_model_inputs(self):
        self.inputs.check_model_inputs()

    def load_data(self):
        from datasets import Value, concatenate_datasets

        per_task = {}
        for index, task in enumerate(self.names):
            task_cfg = self.task_config(index)
            try:
                per_task[task] = type(self.inputs)(task_cfg).load_data()
            except UserError as exc:  # the loader names the single-task option; say which task and list
                raise UserError(f"task {task}: {exc}".replace("--label_column", "--multitask_label_columns")) from None
            sizes = {split: len(ds) for split, ds in per_task[task].splits.items()}
            logger.info("task %s (column '%s'): %s", task, task_cfg.data.label_column, sizes)
        splits = {}
        for split in ("train", "validation", "test"):
            if not all(split in data.splits for data in per_task.values()):
                if split == "test" and any(split in data.splits for data in per_task.values()):
                    logger.info("not every task has a test split: the final evaluation uses validation")
                continue
            parts = []
            for index, data in enumerate(per_task.values()):
                part = data.splits[split]
                column = self.args.multitask_label_columns[index]
                if column != "label":
                    part = part.rename_column(column, "label")
                part = part.cast_column("label", Value("int64"))
                parts.append(part.add_column(TASK_COLUMN, [index] * len(part)))
            splits[split] = concatenate_datasets(parts)
        tasks = {task: data.label_names for task, data in per_task.items()}
        extra = {name: text for data in per_task.values() for name, text in data.extra_outputs.items()}
        sources = sorted({data.source for data in per_task.values()})
        return LabelledData(splits=splits, label_names=flat_label_names(tasks), source=", ".join(sources),
                            extra_outputs=extra)  # fmt: skip

    def load_processor(self):
        return self.inputs.load_processor()

    def load_model(self, label_names):

        model_args = self.cfg.model
        backbone = load_backbone(model_args.model_name_or_path, revision=model_args.revision,
                                 trust_remote_code=model_args.trust_remote_code, allow_pickle=model_args.allow_pickle)  # fmt: skip
        encoder = backbone.model
        encoder.requires_grad_(True)
        encoder.train()
        tasks = tasks_from_flat(label_names)
        model = MultiTaskModel(encoder, tasks, self.weights)
        new_keys = [f"heads.{name}" for name, _ in model.heads.named_parameters()]
        logger.info(
            "heads (trained from scratch): %s", ", ".join(f"{t} ({len(labels)} labels)" for t, labels in tasks.items())
        )
        return model, new_keys

    def encode(self, data, processor):
        sizes = [sum(1 for t in data.splits["train"][TASK_COLUMN] if t == i) for i in range(len(self.names))]
        self.sampling = TaskSampling.build(
            sizes, [self.weights[t] for t in self.names], self.args.multitask_sampling, self.args.multitask_temperature
        )
        logger.info(
            "training batches drawn per task (%s): %s",
            self.args.multitask_sampling,
            ", ".join(
                f"{t} {p:.2f} ({n} rows)"
                for t, p, n in zip(self.names, self.sampling.probabilities, sizes, strict=True)
            ),
        )
        if self.args.multitask_input_kind == "image":
            return self._encode_images(data, processor)
        return self._encode_texts(data, processor)

    def _encode_texts(self, data, tokenizer):

        def tokenize(batch, target_column, split):
            encoded = self.inputs.tokenize(tokenizer, batch)
            encoded["labels"] = batch[target_column]
            encoded["task_ids"] = batch[TASK_COLUMN]
            return encoded

        return encode_splits(data.splits, tokenize, "label", num_proc=self.cfg.data.preprocessing_num_workers)

    def _encode_images(self, data, processor):

        args = self.cfg.data
        width = max(len(labels) for labels in tasks_from_flat(data.label_names).values())

        def transform(augment: str):
            return TaskTagged(
                ImageTransform(
                    processor,
                    args.image_column,
                    "label",
                    num_labels=width,
                    multi_label=False,
                    augment=augment,
                    min_scale=args.augmentation_min_scale,
                )  # fmt: skip
            )

        train, evaluation = transform(args.augmentation), transform("none")
        return {
            split: ds.with_transform(train if split == "train" else evaluation) for split, ds in data.splits.items()
        }

    def data_collator(self, processor):
        if self.args.multitask_input_kind == "image":
            return collate_tagged_images
        return self.inputs.data_collator(processor)

    def build_trainer(self, **kwargs):

        return MultiTaskTrainer(sampling=self.sampling, **kwargs)

    def compute_metrics(self, data):

        names = self.names
        widths = {t: len(labels) for t, labels in tasks_from_flat(data.label_names).items()}

        def compute_metrics(eval_pred) -> dict[str, float]:
            scores = {}
            for task, (gold, predicted) in per_task_predictions(eval_pred, names, widths).items():
                if len(gold):
                    for key, value in classification_scores(gold, predicted).items():
                        scores[f"{task}_{key}"] = value
            # The headline (and `metric_for_best_model`): every task counts equally, whatever its size.
            for key in ("accuracy", "macro_f1"):
                values = [scores[f"{t}_{key}"] for t in names if f"{t}_{key}" in scores]
                scores[key] = sum(values) / len(values)
            return scores

        return compute_metrics

    def input_columns(self):
        return self.inputs.input_columns()

    def describe_example(self, example):
        return self.inputs.describe_example(example)

    # --- Reports ---

    def _per_task(self, prediction, data):
        widths = {t: len(labels) for t, labels in tasks_from_flat(data.label_names).items()}
        return per_task_predictions(prediction, self.names, widths)

    def evaluation_report(self, prediction, data):

        tasks = tasks_from_flat(data.label_names)
        return {
            "per_task": {
                task: per_class_report(gold, predicted, tasks[task])["per_class"]
                for task, (gold, predicted) in self._per_task(prediction, data).items()
            }
        }

    def write_report_files(self, out, prediction, data, split):
        """`confusion_matrix.json` (one matrix per task) and one picture per task."""

        tasks = tasks_from_flat(data.label_names)
        matrices = {}
        for task, (gold, predicted) in self._per_task(prediction, data).items():
            cm = per_class_report(gold, predicted, tasks[task])["confusion_matrix"]
            matrices[task] = cm
            save_confusion_matrix_png(cm["labels"], cm["matrix"], out / f"confusion_matrix_{task}.png",
                                      f"{out.name}: {task} ({split})")  # fmt: skip
        write_json(out / "confusion_matrix.json", {"split": split, "per_task": matrices})

    def baseline(self, data, prediction):
        """Per task: always its most frequent training label; `accuracy` is their mean, as the headline's is."""

        train = data.splits["train"]
        task_ids, labels = train[TASK_COLUMN], train["label"]
        scores = {}
        for index, (task, (gold, _)) in enumerate(self._per_task(prediction, data).items()):
            task_labels = [y for t, y in zip(task_ids, labels, strict=True) if t == index]
            scores[f"{task}_accuracy"] = majority_baseline(task_labels, gold)
        scores = {"accuracy": sum(scores.values()) / len(scores), **scores}
        return {"name": "majority class per task", "scores": scores}

    def write_mistakes(self, out, raw_split, prediction, data):
        """`misclassified.jsonl`: wrong predictions of every head, each task's most confident first."""
        import numpy as np

        tasks = tasks_from_flat(data.label_names)
        logits, task_ids = prediction.predictions
        rows = []
        for index, task in enumerate(self.names):
            where = np.flatnonzero(task_ids == index)
            probabilities = softmax(logits[where, : len(tasks[task])])
            predicted = probabilities.argmax(-1)
            gold = prediction.label_ids[where]
            wrong = np.flatnonzero(predicted != gold)
            wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])]
            for i in wrong:
                rows.append({
                    "task": task,
                    **self.describe_example(raw_split[int(where[i])]),
                    "label": tasks[task][gold[i]],
                    "predicted": tasks[task][predicted[i]],
                    "score": round(float(probabilities[i, predicted[i]]), 4),
                })  # fmt: skip
        write_lines(out / MISCLASSIFIED, rows)

    def summary_extras(self, data):
        tasks = tasks_from_flat(data.label_names)
        sampling = self.sampling
        info = {
            task: {
                "labels": tasks[task],
                "label_column": self.args.multitask_label_columns[i],
                "weight": self.weights[task],
                "train_rows": sampling.sizes[i] if sampling else None,
                "batch_share": round(sampling.probabilities[i], 4) if sampling else None,
            }
            for i, task in enumerate(self.names)
        }
        rule = self.args.multitask_sampling + (
            f", T={self.args.multitask_temperature:g}" if self.args.multitask_sampling == "temperature" else ""
        )
        notes = [
            f"Multi-task: one shared encoder, one linear head per task on its first-token feature; batches of one "
            f"task each, drawn {rule}",
            *(
                f"Task {t}: label column `{v['label_column']}`, {len(v['labels'])} labels, loss weight {v['weight']:g}, "
                f"{v['train_rows']} training rows, {100 * (v['batch_share'] or 0):.0f}% of the batches"
                for t, v in info.items()
            ),
        ]
        return {"tasks": info, "notes": notes}

    def describe_labels(self, label_names):
        tasks = tasks_from_flat(label_names)
        return "Heads: " + "; ".join(f"{t} ({len(labels)}): {', '.join(labels)}" for t, labels in tasks.items())

    def report_files_note(self):
        return "Per-task, per-class scores are in `metrics.json`; one confusion matrix per task in `confusion_matrix_<task>.png`."

    def usage_example(self, source: str) -> str:
        kind = "texts" if self.args.multitask_input_kind == "text" else "images  # PIL images or file paths"
        return f"""This folder holds one encoder (`config.json` + `model.safetensors`, a plain transformers checkpoint
for `AutoModel`) and one head per task (`heads.safetensors`, described in `multitask.json`).

```python
from hf_finetune.tasks.multi_task import MultiTaskPredictor

predictor = MultiTaskPredictor("{source}")
predictor.predict({kind}, tasks=["{self.names[0]}"])  # or every task: tasks=None
```
"""

    def load_hint(self, out) -> str:
        if self.args.multitask_input_kind == "text":
            return f'predict with: hf-finetune predict --model {out} --task all --text "..."'
        return f"predict with: MultiTaskPredictor('{out}').predict(images, tasks=None)  (hf_finetune.tasks.multi_task)"


def per_task_predictions(prediction, names: list[str], widths: dict[str, int]) -> dict:
    """Task -> (gold label ids, predicted label ids) of that task's rows; predictions are (logits, task ids)."""
    logits, task_ids = prediction.predictions
    gold = prediction.label_ids
    out = {}
    for index, task in enumerate(names):
        rows = task_ids == index
        out[task] = (gold[rows], logits[rows, : widths[task]].argmax(-1))
    return out


class TaskTagged:
    """An image transform whose batches also carry each row's task id."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, batch: dict) -> dict:
        import torch

        return {**self.transform(batch), "task_ids": torch.tensor(batch[TASK_COLUMN], dtype=torch.long)}


def collate_tagged_images(examples: list[dict]) -> dict:
    import torch

    return {**collate_images(examples), "task_ids": torch.stack([e["task_ids"] for e in examples])}
