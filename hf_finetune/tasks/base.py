"""What a task supplies to the shared training run, and the classification behaviour two tasks share.

`training.run` asks the task for everything that differs between kinds of prediction: data,
model, encoding and metrics before training; after it, the evaluation report, the trivial
baseline, the file of mistakes and the lines the model card needs. `ClassificationTask`
implements the reports for one label (softmax) or several (sigmoid) per example; text and
image classification both use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hf_finetune.engine.trainer import StrategyTrainer
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import (
    class_weight_vector,
    majority_baseline,
    majority_label_set_baseline,
    make_compute_metrics,
    make_multilabel_compute_metrics,
    multilabel_predictions,
    multilabel_report,
    per_class_report,
    tune_threshold,
)
from hf_finetune.evaluation.mistakes import write_misclassified, write_misclassified_multilabel
from hf_finetune.evaluation.plots import save_confusion_matrix_png
from hf_finetune.modeling.loading import check_model_inputs, resolve_checkpoint
from hf_finetune.modeling.losses import classification_loss
from hf_finetune.modeling.regularisation import config_overrides
from hf_finetune.outputs import MISCLASSIFIED, write_json
from hf_finetune.settings.arguments import parse_class_weights


class Task:
    """A task knows its data columns, model class, input encoding and metrics; `training.run` does the rest."""

    name: ClassVar[str]
    summary: ClassVar[str]
    pipeline_tag: ClassVar[str]
    # What a user passes to `pipeline(pipeline_tag, model=DIR)`, for the model card's example.
    example_input: ClassVar[str] = '"your text here"'
    # Extra `pipeline(...)` arguments for the card's example, e.g. `, aggregation_strategy="first"`.
    pipeline_arguments: ClassVar[str] = ""
    # For the model card's adapter example: the Auto class of the task model, and the pipeline
    # argument that takes the processor (the adapter repo holds the tokenizer or image processor).
    auto_model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    processor_argument: ClassVar[str] = "tokenizer"
    # The metric that picks the best checkpoint when the recipe keeps the classification default
    # (`macro_f1`), and whether larger is better.
    best_metric: ClassVar[str] = "macro_f1"
    greater_is_better: ClassVar[bool] = True
    supports_class_weights: ClassVar[bool] = False
    # Trainer's `label_smoothing_factor` (or our loss, `modeling.losses`) makes sense for this task's labels.
    supports_label_smoothing: ClassVar[bool] = False
    # Random augmentation of training batches (random erasing, mixup/cutmix): images only.
    supports_batch_augmentation: ClassVar[bool] = False
    # drop_path_rate / hidden_dropout / attention_dropout reach this task's model config (`model_config_kwargs`).
    supports_model_overrides: ClassVar[bool] = False
    # Dataclass of this task's own prefixed config fields (`multitask_names`), or None; collected
    # by `hf_finetune.recipes` as the strategies' are.
    Arguments: ClassVar[type | None] = None

    def __init__(self, cfg):
        self.cfg = cfg
        args = cfg.training
        if self.best_metric != "macro_f1" and (args.metric_for_best_model or "macro_f1") in (
            "macro_f1",
            "eval_macro_f1",
        ):
            args.metric_for_best_model, args.greater_is_better = self.best_metric, self.greater_is_better
        if cfg.data.class_weights != "none" and not self.supports_class_weights:
            raise UserError(
                f"class_weights is for single-label classification; task {self.name} does not use it. "
                "Remove it or set it to none"
            )
        check_task_options(self, cfg)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """The headline metrics, in order: the printed table, the model card, the card's `model-index`."""
        return ("accuracy", "macro_f1", "macro_precision", "macro_recall")

    def check_model_inputs(self) -> None:
        """The cheap checks of checkpoint (and tokenizer) paths, before any data is loaded."""

        check_model_inputs(self.cfg.model)

    def load_data(self):
        """Validated splits and label names (`data.LabelledData`)."""
        raise NotImplementedError

    def load_processor(self):
        """Tokenizer or image processor; saved with the model."""
        raise NotImplementedError

    def load_model(self, label_names: list[str]):
        """(model with a new head sized to the labels, names of newly initialised weights)."""
        raise NotImplementedError

    def encode(self, data, processor) -> dict:
        """Split name -> model-ready dataset with a `labels` column."""
        raise NotImplementedError

    def data_collator(self, processor):
        raise NotImplementedError

    def compute_metrics(self, data):
        raise NotImplementedError

    def input_columns(self) -> list[tuple[str, str]]:
        """(kind, column) of the model inputs, e.g. [("text", "review")], for the model card."""
        raise NotImplementedError

    @property
    def target_column(self) -> str:
        """The column of gold labels (targets, tags)."""
        return self.cfg.data.label_column

    def describe_example(self, example: dict) -> dict:
        """The human-readable input of one raw example, for the file of mistakes."""
        raise NotImplementedError

    # --- Training hooks (defaults: nothing to add) ---

    def loss_function(self, data):
        """A `(logits, labels) -> loss` replacing the model's own loss (class weights), or None."""
        return None

    def batch_transform(self, processor, data):
        """`inputs -> inputs` applied to each training batch only (random augmentation, mixup), or None."""
        return None

    def after_training(self, trainer, encoded: dict, data) -> None:
        """Runs once the best model is loaded, before the final evaluations (e.g. tuning a threshold)."""

    def build_trainer(self, **kwargs):
        """The Trainer of the run: `StrategyTrainer`, or a subclass the task needs (one task per batch)."""

        return StrategyTrainer(**kwargs)

    # --- Reports after training ---

    def evaluation_report(self, prediction, data) -> dict:
        """Details for metrics.json, per split: {section name: value}, e.g. {"per_class": {...}}."""
        raise NotImplementedError

    def write_report_files(self, out: Path, prediction, data, split: str) -> None:
        """Pictures and tables beside the model (confusion matrix, scatter plot); nothing by default."""

    def baseline(self, data, prediction) -> dict:
        """The trivial predictor every model must beat: {"name": ..., "scores": {metric: value}}."""
        raise NotImplementedError

    def write_mistakes(self, out: Path, raw_split, prediction, data) -> None:
        raise NotImplementedError

    def summary_extras(self, data) -> dict:
        """Task facts for metrics.json and the model card: `notes` (card lines) and machine-readable values."""
        return {}

    def describe_labels(self, label_names: list[str]) -> str:
        """The model card's line about what the model predicts."""
        return f"Labels ({len(label_names)}): {', '.join(label_names)}"

    def report_files_note(self) -> str:
        return "Per-class scores are in `metrics.json`."

    def usage_example(self, source: str) -> str | None:
        """The model card's "How to use" for a folder `pipeline(...)` cannot load; None: the pipeline example."""
        return None

    def load_hint(self, out) -> str:
        """The last line a finished run prints: how to load the model."""
        return f'load it with: pipeline("{self.pipeline_tag}", model="{out}"{self.pipeline_arguments})'


class ClassificationTask(Task):
    """One label per example (softmax, cross-entropy, optional class weights) or several (`multi_label`:
    sigmoid, binary cross-entropy, a threshold optionally tuned on validation)."""

    supports_class_weights = True
    supports_label_smoothing = True
    supports_model_overrides = True

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.data.multi_label and cfg.data.class_weights != "none":
            raise UserError("class_weights is for single-label classification; remove it with --multi_label true")
        if cfg.data.multi_label and cfg.training.label_smoothing_factor:
            raise UserError(
                "label_smoothing_factor is for single-label classification; remove it with --multi_label true"
            )
        if cfg.data.multi_label_tune_threshold and not cfg.data.multi_label:
            raise UserError("multi_label_tune_threshold needs --multi_label true")
        self.threshold = cfg.data.multi_label_threshold
        self.class_weights = None  # label name -> weight, once computed from the training labels

    @property
    def metric_keys(self):
        if self.cfg.data.multi_label:
            return ("accuracy", "micro_f1", "macro_f1", "macro_precision", "macro_recall")
        return super().metric_keys

    def model_config_kwargs(self) -> dict:
        """Config overrides for `from_pretrained`: the problem type, stochastic depth and dropout."""
        overrides = config_overrides(self.cfg.model, resolve_checkpoint(self.cfg.model.model_name_or_path))
        if self.cfg.data.multi_label:
            overrides["problem_type"] = "multi_label_classification"
        return overrides

    def compute_metrics(self, data):

        if self.cfg.data.multi_label:
            return make_multilabel_compute_metrics(lambda: self.threshold)
        return make_compute_metrics(self.cfg.data.extra_metrics)

    def loss_function(self, data):
        """Our cross-entropy (`modeling.losses`) when class weights, label smoothing or mixed (soft) targets need
        it, else None for the model's own loss. Multi-label keeps the model's BCE."""
        import torch

        data_args = self.cfg.data
        mixing = data_args.mixup_alpha > 0 or data_args.cutmix_alpha > 0
        smoothing = self.cfg.training.label_smoothing_factor
        spec = parse_class_weights(data_args.class_weights)
        if data_args.multi_label or (spec == "none" and not smoothing and not mixing):
            return None
        weight = None
        if spec != "none":
            weights = class_weight_vector(spec, data.splits["train"][data_args.label_column], len(data.label_names))
            self.class_weights = {name: round(float(w), 4) for name, w in zip(data.label_names, weights, strict=True)}
            weight = torch.tensor(weights, dtype=torch.float32)
        return classification_loss(weight, smoothing)

    def after_training(self, trainer, encoded, data):
        """`multi_label_tune_threshold`: the grid threshold with the best validation score, kept in config.json."""
        import logging

        if not (self.cfg.data.multi_label and self.cfg.data.multi_label_tune_threshold):
            return
        prediction = trainer.predict(encoded["validation"], metric_key_prefix="threshold")
        metric = (self.cfg.training.metric_for_best_model or "macro_f1").removeprefix("eval_")
        metric = metric if metric in self.metric_keys else "macro_f1"
        self.threshold, score = tune_threshold(prediction.predictions, prediction.label_ids, metric)
        trainer.model.config.multi_label_threshold = self.threshold
        logging.getLogger("hf_finetune").info(
            "threshold tuned on validation: %.2f (validation %s %.4f)", self.threshold, metric, score
        )

    def _report(self, prediction, data) -> dict:

        if self.cfg.data.multi_label:
            predicted = multilabel_predictions(prediction.predictions, self.threshold)
            return multilabel_report(prediction.label_ids, predicted, data.label_names)
        return per_class_report(prediction.label_ids, prediction.predictions.argmax(-1), data.label_names)

    def evaluation_report(self, prediction, data):
        return {"per_class": self._report(prediction, data)["per_class"]}

    def write_report_files(self, out, prediction, data, split):
        """`confusion_matrix.json` (multi-label: one 2x2 matrix per label) and, single-label, its picture."""

        cm = self._report(prediction, data)["confusion_matrix"]
        write_json(out / "confusion_matrix.json", {"split": split, **cm})
        if "matrix" in cm:  # multi-label has no class-by-class picture
            save_confusion_matrix_png(cm["labels"], cm["matrix"], out / "confusion_matrix.png", f"{out.name} ({split})")

    def baseline(self, data, prediction):

        train_labels = data.splits["train"][self.cfg.data.label_column]
        if self.cfg.data.multi_label:
            value = majority_label_set_baseline(train_labels, prediction.label_ids)
            return {"name": "most frequent label set", "scores": {"accuracy": value}}
        return {"name": "majority class", "scores": {"accuracy": majority_baseline(train_labels, prediction.label_ids)}}

    def write_mistakes(self, out, raw_split, prediction, data):

        if self.cfg.data.multi_label:
            write_misclassified_multilabel(
                out / MISCLASSIFIED, self, raw_split, prediction, data.label_names, self.threshold
            )
        else:
            write_misclassified(out / MISCLASSIFIED, self, raw_split, prediction, data.label_names)

    def summary_extras(self, data):
        extras, notes = {}, []
        if self.cfg.data.multi_label:
            tuned = self.cfg.data.multi_label_tune_threshold
            extras["multi_label_threshold"] = self.threshold
            notes.append(
                f"Multi-label: sigmoid per label, binary cross-entropy; a label is predicted at probability >= "
                f"{self.threshold:g} ({'tuned on the validation split' if tuned else 'fixed'})"
            )
        if self.class_weights is not None:
            extras["class_weights"] = self.class_weights
            mode = "auto: n / (classes x count)" if self.cfg.data.class_weights == "auto" else "given"
            weights = ", ".join(f"{name} {w:g}" for name, w in self.class_weights.items())
            notes.append(f"Class-weighted cross-entropy ({mode}): {weights}")
        if notes:
            extras["notes"] = notes
        return extras

    def report_files_note(self):
        if self.cfg.data.multi_label:
            return "Per-label scores and one 2x2 confusion matrix per label are in `metrics.json` and `confusion_matrix.json`."
        return "Per-class scores and the confusion matrix are in `metrics.json` and `confusion_matrix.png`."


def check_task_options(task: Task, cfg) -> None:
    """Options this task cannot use fail in one line, before any data is read."""
    data = cfg.data
    if cfg.training.label_smoothing_factor and not task.supports_label_smoothing:
        raise UserError(f"label_smoothing_factor is for classification; task {task.name} does not use it. Remove it")
    overrides = [
        name
        for name in ("drop_path_rate", "hidden_dropout", "attention_dropout")
        if getattr(cfg.model, name) is not None
    ]
    if overrides and not task.supports_model_overrides:
        raise UserError(f"{', '.join(overrides)} cannot be set for task {task.name} yet. Remove them")
    batch_options = [name for name in ("mixup_alpha", "cutmix_alpha", "random_erasing") if getattr(data, name)]
    if batch_options and not task.supports_batch_augmentation:
        raise UserError(
            f"{', '.join(batch_options)} augment training images; task {task.name} does not use them. Remove them"
        )
