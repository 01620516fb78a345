"""Text regression: one number per text or sentence pair (STS-B similarity, ratings, readability).

A task of its own rather than an option of text classification: its target is a number, so the
data checks (finite numbers, no classes, a random validation split), the head (one output,
`problem_type="regression"`, MSE loss), the metrics (Pearson, Spearman, MSE), the checkpoint choice,
the baseline (the mean training target), the reports (no confusion matrix; largest errors and a
scatter plot) and `predict` (a score, no label) all differ. The text side (tokenizer, pairs) is the
classifier's, shared through `TextInputs`. transformers serves the model through the
`text-classification` pipeline, which returns the raw output for `problem_type="regression"`.
"""

from __future__ import annotations

import numpy as np

from ..data import load_regression_data
from ..errors import UserError
from ..modeling import load_classifier
from . import register_task
from .base import Task
from .text_classification import TextInputs

# Error metrics: lower is better when one of them picks the best checkpoint.
ERROR_METRICS = ("mse", "rmse", "mae", "loss")


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

    def load_data(self):
        return load_regression_data(self.cfg.data, seed=self.cfg.training.seed)

    def load_model(self, label_names):
        from transformers import AutoModelForSequenceClassification

        return load_classifier(
            AutoModelForSequenceClassification, self.cfg.model, label_names, problem_type="regression"
        )

    def compute_metrics(self, data):
        from ..metrics import make_regression_compute_metrics

        return make_regression_compute_metrics()

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
        from ..plots import save_scatter_png

        save_scatter_png(
            prediction.label_ids.ravel(), prediction.predictions.ravel(), out / "predictions_scatter.png",
            f"{out.name} ({split})", self.cfg.data.label_column,
        )  # fmt: skip

    def baseline(self, data, prediction):
        from ..metrics import mean_baseline

        scores = mean_baseline(data.splits["train"][self.cfg.data.label_column], prediction.label_ids)
        return {"name": "mean of the training targets", "scores": scores}

    def write_mistakes(self, out, raw_split, prediction, data):
        from ..outputs import LARGEST_ERRORS
        from ..reports import write_largest_errors

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
            ],
        }

    def describe_labels(self, label_names):
        return f"Target: `{label_names[0]}`, one number per example (the pipeline returns it as `score`)"

    def report_files_note(self):
        return (
            "Errors by target quarter are in `metrics.json`, predictions against targets in "
            "`predictions_scatter.png`, every example with its error in `largest_errors.jsonl`."
        )
