"""Text regression: one number per text or sentence pair (STS-B similarity, ratings, readability).

A task of its own rather than an option of text classification: its target is a number, so the
data checks (finite numbers, no classes, a random validation split), the head (one output,
`problem_type="regression"`, MSE loss), the metrics (Pearson, Spearman, MSE), the checkpoint choice,
the baseline (the mean training target), the reports (no confusion matrix; largest errors and a
scatter plot) and `predict` (a score, no label) all differ. The text side (tokenizer, pairs) is the
classifier's, shared through `TextInputs`. transformers serves the model through the
`text-classification` pipeline, which returns the raw output for `problem_type="regression"`.

Targets are standardised for training. A new head outputs values near 0 through a small linear
layer on BERT's tanh-bounded pooler, and Adam moves each weight by about the learning rate per
step; measured on readability grades (mean 8, std 4.5), the raw targets left predictions squeezed
into 4-12 after 3 epochs (test MSE 7.7, Pearson 0.79). So the new head learns z = (y - mean) / std
(it starts as the mean predictor), and once training ends the mean and std are folded into its
last layer (W x std, b x std + mean): the saved model outputs the target's own units, so
`pipeline(...)` and `predict` need nothing extra. Only the final folder is folded: intermediate
`checkpoint-*` folders output z. A checkpoint whose head is already trained for regression
(further fine-tuning) keeps its units and is not standardised.
"""

from __future__ import annotations

import numpy as np

from hf_finetune.data.splits import load_regression_data
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import make_regression_compute_metrics, mean_baseline
from hf_finetune.evaluation.mistakes import write_largest_errors
from hf_finetune.evaluation.plots import save_scatter_png
from hf_finetune.modeling.loading import load_classifier
from hf_finetune.outputs import LARGEST_ERRORS
from hf_finetune.tasks import register_task
from hf_finetune.tasks.base import Task
from hf_finetune.tasks.text_classification import TextInputs

# Error metrics: lower is better when one of them picks the best checkpoint.
ERROR_METRICS = ("mse", "rmse", "mae", "loss")


def output_layers(model) -> list:
    """The head's last layer: the Linear layers with one output (PEFT: the trained copy, not `original_module`)."""
    import torch

    return [
        module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == 1 and "original_module" not in name
    ]


@register_task
class TextRegression(TextInputs, Task):
    name = "text_regression"
    summary = "one number per text or text pair: similarity (STS-B), ratings, readability"
    pipeline_tag = "text-classification"
    best_metric = "pearson"

    def __init__(self, cfg):
        super().__init__(cfg)
        metric = (cfg.training.metric_for_best_model or "").removeprefix("eval_")
        if metric in ERROR_METRICS:
            cfg.training.greater_is_better = False
        if cfg.data.multi_label:
            raise UserError("multi_label is for classification; a regression target is one number per example")
        if cfg.data.text_pair_column:
            self.example_input = '{"text": "first text", "text_pair": "second text"}'

    @property
    def metric_keys(self):
        return ("pearson", "spearman", "mse", "mae")

    # Standardisation state: (mean, std) of the training targets while the model outputs z; None once the
    # head outputs the target's units (folded, or a checkpoint already trained for regression).
    scale: tuple[float, float] | None = None
    standardised: tuple[float, float] | None = None  # the (mean, std) training used, for the card

    def load_data(self):
        data = load_regression_data(self.cfg.data, seed=self.cfg.training.seed)
        targets = np.asarray(data.splits["train"][self.cfg.data.label_column], dtype=float)
        self.target_stats = (float(targets.mean()), float(targets.std()))
        return data

    def load_model(self, label_names):
        import torch
        from transformers import AutoModelForSequenceClassification

        model, new = load_classifier(
            AutoModelForSequenceClassification, self.cfg.model, label_names, problem_type="regression"
        )
        layers = output_layers(model)
        if new and len(layers) == 1 and getattr(self, "target_stats", None):
            self.scale = self.standardised = self.target_stats
            with torch.no_grad():
                layers[0].bias.zero_()  # z = 0: the mean predictor
        return model, new

    def loss_function(self, data):
        """MSE on standardised targets (and on standardised predictions once the head is folded)."""
        import torch

        if self.scale is None:
            return None
        mean, std = self.scale

        def standardised_mse(logits, labels):
            predicted = logits.view(-1) if self.scale is not None else (logits.view(-1) - mean) / std
            return torch.nn.functional.mse_loss(predicted, (labels.view(-1).to(logits.dtype) - mean) / std)

        return standardised_mse

    def in_units(self, predictions: np.ndarray) -> np.ndarray:
        """Model outputs in the target's units (z -> y while the head is not folded yet)."""
        predictions = np.asarray(predictions, dtype=float)
        return predictions * self.scale[1] + self.scale[0] if self.scale is not None else predictions

    def after_training(self, trainer, encoded, data):
        """Fold the standardisation into the head's last layer: y = std x (W h + b) + mean."""
        import torch

        if self.scale is None:
            return
        mean, std = self.scale
        (layer,) = output_layers(trainer.model)
        with torch.no_grad():
            layer.weight.mul_(std)
            layer.bias.mul_(std).add_(mean)
        self.scale = None

    def compute_metrics(self, data):

        return make_regression_compute_metrics(self.in_units)

    def evaluation_report(self, prediction, data):
        """Mean absolute error per quarter of the gold targets: where on the scale the model errs."""
        gold, predicted = prediction.label_ids.ravel(), prediction.predictions.ravel()
        edges = np.quantile(gold, [0, 0.25, 0.5, 0.75, 1])
        quarters = np.clip(np.searchsorted(edges, gold, side="right") - 1, 0, 3)
        return {
            "by_target_quarter": [
                {
                    "range": [round(float(edges[q]), 4), round(float(edges[q + 1]), 4)],
                    "examples": int((quarters == q).sum()),
                    "mae": float(np.abs(predicted - gold)[quarters == q].mean()) if (quarters == q).any() else None,
                    "mean_prediction": float(predicted[quarters == q].mean()) if (quarters == q).any() else None,
                }
                for q in range(4)
            ]
        }

    def write_report_files(self, out, prediction, data, split):
        save_scatter_png(
            prediction.label_ids.ravel(), prediction.predictions.ravel(), out / "predictions_scatter.png",
            f"{out.name} ({split})", self.cfg.data.label_column,
        )  # fmt: skip

    def baseline(self, data, prediction):

        scores = mean_baseline(data.splits["train"][self.cfg.data.label_column], prediction.label_ids)
        return {"name": "mean of the training targets", "scores": scores}

    def write_mistakes(self, out, raw_split, prediction, data):

        write_largest_errors(out / LARGEST_ERRORS, self, raw_split, prediction.label_ids, prediction.predictions)

    def summary_extras(self, data):
        train = np.asarray(data.splits["train"][self.cfg.data.label_column], dtype=float)
        return {
            "target": {
                "mean": float(train.mean()),
                "std": float(train.std()),
                "min": float(train.min()),
                "max": float(train.max()),
            },  # fmt: skip
            "notes": [
                f"Regression: one output, MSE loss; training targets mean {train.mean():.3g}, std {train.std():.3g}, "
                f"range {train.min():.3g} to {train.max():.3g}"
                + (
                    "; trained on standardised targets, the mean and std folded into the output layer afterwards "
                    "(the model outputs the target's units)"
                    if self.standardised
                    else ""
                )
            ],
        }

    def describe_labels(self, label_names):
        return f"Target: `{label_names[0]}`, one number per example (the pipeline returns it as `score`)"

    def report_files_note(self):
        return (
            "Errors by target quarter are in `metrics.json`, predictions against targets in "
            "`predictions_scatter.png`, every example with its error in `largest_errors.jsonl`."
        )
