"""Metrics from scikit-learn (classification), seqeval (entities) and scipy (correlations).

`evaluate.load("accuracy")` downloads the metric's code from the Hub, which fails
offline (its `seqeval` module too), so the built-in metrics come from these packages
directly. `evaluate` remains the way to add others (`extra_metrics: [path/to/metric.py]`
or a Hub id when online).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hf_finetune.errors import UserError, first_line


def classification_scores(y_true, y_pred) -> dict[str, float]:
    """The per-evaluation numbers logged during training (macro = every class counts equally)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
    }


def load_extra_metrics(names: list[str]) -> list[tuple[str, object]]:
    if not names:
        return []
    import evaluate

    loaded = []
    for name in names:
        try:
            loaded.append((Path(name).stem if name.endswith(".py") else name.split("/")[-1], evaluate.load(name)))
        except Exception as exc:
            raise UserError(
                f"cannot load extra metric '{name}': {first_line(exc)}. Offline, pass the path of a local metric script"
            ) from None
    return loaded


def make_compute_metrics(extra_metric_names: list[str]) -> Callable:
    """A `compute_metrics` for Trainer: scikit-learn scores plus any extra `evaluate` metrics."""
    extra = load_extra_metrics(extra_metric_names)

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        preds = np.argmax(logits, axis=-1)
        scores = classification_scores(labels, preds)
        for metric_name, module in extra:
            result = module.compute(predictions=preds.tolist(), references=labels.tolist()) or {}
            for key, value in result.items():
                scores[metric_name if key == metric_name else f"{metric_name}_{key}"] = float(value)
        return scores

    return compute_metrics


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _per_class_scores(label_names: list[str], precision, recall, f1, support) -> dict:
    """scikit-learn's per-class arrays as {class name: {precision, recall, f1, support}}."""
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    }


def per_class_report(y_true, y_pred, label_names: list[str]) -> dict:
    """Precision/recall/F1/support per class and the confusion matrix (rows = true, columns = predicted)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0
    )
    return {
        "per_class": _per_class_scores(label_names, precision, recall, f1, support),
        "confusion_matrix": {
            "labels": label_names,
            "matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        },
    }


def majority_baseline(train_labels, eval_labels) -> float:
    """Accuracy of always predicting the most frequent training label: the bar any model must clear."""
    majority = np.bincount(np.asarray(train_labels)).argmax()
    return float(np.mean(np.asarray(eval_labels) == majority))


# Multi-label: one sigmoid per label, a label is on when its probability reaches the threshold.
# `accuracy` is subset accuracy (every label of the example right), the strictest reading and what
# scikit-learn's accuracy_score computes for label indicator arrays; micro F1 pools all decisions
# (frequent labels dominate), macro F1 averages per label (rare labels count as much).


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def multilabel_predictions(logits: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 indicator array: a label is on when its sigmoid probability reaches the threshold."""
    return (sigmoid(logits) >= threshold).astype(int)


def multilabel_scores(y_true, y_pred) -> dict[str, float]:
    """Scores for 0/1 indicator arrays of shape (examples, labels)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    scores = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("micro", "macro"):
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        scores |= {
            f"{average}_f1": float(f1),
            f"{average}_precision": float(precision),
            f"{average}_recall": float(recall),
        }
    return scores


def make_multilabel_compute_metrics(threshold: float | Callable[[], float]) -> Callable:
    """`threshold` may be a callable, read at each evaluation (it changes once tuned on validation)."""

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predicted = multilabel_predictions(logits, threshold() if callable(threshold) else threshold)
        return multilabel_scores(eval_pred.label_ids.astype(int), predicted)

    return compute_metrics


# Candidate thresholds for `multi_label_tune_threshold`: a coarse grid is enough (F1 is flat near its
# optimum) and a coarse grid overfits the validation split less than searching every logit value.
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))


def tune_threshold(logits: np.ndarray, gold, metric: str) -> tuple[float, float]:
    """The grid threshold with the best `metric` (a `multilabel_scores` key) on these examples.

    Ties go to the threshold nearest 0.5, the untuned default.
    """
    gold = np.asarray(gold).astype(int)
    scored = [(multilabel_scores(gold, multilabel_predictions(logits, t))[metric], t) for t in THRESHOLD_GRID]
    best = max(score for score, _ in scored)
    threshold = min((t for score, t in scored if score == best), key=lambda t: abs(t - 0.5))
    return threshold, best


def multilabel_report(y_true, y_pred, label_names: list[str]) -> dict:
    """Per-label precision/recall/F1/support and one 2x2 confusion matrix per label.

    A single confusion matrix does not exist for multi-label data (an example can be right on
    one label and wrong on another), so each label gets [[TN, FP], [FN, TP]].
    """
    from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    matrices = multilabel_confusion_matrix(y_true, y_pred)
    return {
        "per_class": _per_class_scores(label_names, precision, recall, f1, support),
        "confusion_matrix": {
            "labels": label_names,
            "per_label": {n: matrices[i].tolist() for i, n in enumerate(label_names)},
        },
    }


def majority_label_set_baseline(train_label_lists, eval_multi_hot) -> float:
    """Subset accuracy of always predicting the most frequent training label set."""
    from collections import Counter

    majority = Counter(tuple(sorted(labels)) for labels in train_label_lists).most_common(1)[0][0]
    eval_multi_hot = np.asarray(eval_multi_hot).astype(int)
    target = np.zeros(eval_multi_hot.shape[1], dtype=int)
    target[list(majority)] = 1
    return float(np.mean((eval_multi_hot == target).all(axis=1)))


def class_weight_vector(spec, train_labels, num_classes: int) -> np.ndarray:
    """Per-class loss weights: `auto` is scikit-learn's `balanced`, n / (k x count); a list is taken as given.

    A class absent from the training labels gets weight 0 under `auto` (nothing to learn from it anyway).
    """

    if spec == "auto":
        counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=num_classes).astype(float)
        present = counts > 0
        weights = np.zeros(num_classes)
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights
    weights = np.asarray(spec, dtype=float)
    if len(weights) != num_classes:
        raise UserError(
            f"class_weights has {len(weights)} weights but there are {num_classes} labels; give one per label"
        )
    return weights


# --- Token classification: entity-level scores from seqeval ---
# seqeval's default mode follows the conlleval script (the CoNLL-2003 shared task's scorer): an entity
# counts as found when its type and its span (first to last word) are both right.


def tag_sequences(logits: np.ndarray, label_ids: np.ndarray, label_names: list[str]):
    """Gold and predicted tag names per sentence, over the scored positions (label != -100: one per word)."""
    predicted = np.asarray(logits).argmax(-1)
    gold_rows, pred_rows = [], []
    for gold_ids, pred_ids in zip(label_ids, predicted, strict=True):
        keep = gold_ids != -100
        gold_rows.append([label_names[i] for i in gold_ids[keep]])
        pred_rows.append([label_names[i] for i in pred_ids[keep]])
    return gold_rows, pred_rows


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity precision/recall/F1 (micro over entities), word accuracy, and F1 per entity type (`PER_f1`)."""
    from seqeval.metrics import accuracy_score, classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    scores = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "accuracy": float(accuracy_score(gold, predicted)),
    }
    for kind, values in report.items():
        if not kind.endswith(" avg"):
            scores[f"{kind}_f1"] = float(values["f1-score"])
    return scores


def entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Precision/recall/F1/support (gold entities) per entity type."""
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        kind: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for kind, v in report.items()
        if not kind.endswith(" avg")
    }


def make_token_compute_metrics(label_names: list[str]) -> Callable:
    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return entity_scores(*tag_sequences(logits, eval_pred.label_ids, label_names))

    return compute_metrics


# --- Regression: errors from scikit-learn, correlations from scipy ---


def regression_scores(y_true, y_pred) -> dict[str, float]:
    """MSE, RMSE, MAE, and Pearson/Spearman correlation (0 when the predictions are constant: undefined)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    y_true, y_pred = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    mse = float(mean_squared_error(y_true, y_pred))
    scores = {"mse": mse, "rmse": mse**0.5, "mae": float(mean_absolute_error(y_true, y_pred))}
    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    scores["pearson"] = 0.0 if constant else float(pearsonr(y_true, y_pred)[0])
    scores["spearman"] = 0.0 if constant else float(spearmanr(y_true, y_pred)[0])
    return scores


def make_regression_compute_metrics(to_units: Callable | None = None) -> Callable:
    """`to_units` maps model outputs to the target's units (training on standardised targets)."""

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return regression_scores(eval_pred.label_ids, to_units(predictions) if to_units else predictions)

    return compute_metrics


def mean_baseline(train_targets, eval_targets) -> dict[str, float]:
    """Errors of always predicting the mean training target (correlations are undefined for a constant)."""
    eval_targets = np.asarray(eval_targets, dtype=float).ravel()
    constant = np.full_like(eval_targets, float(np.mean(train_targets)))
    scores = regression_scores(eval_targets, constant)
    return {k: scores[k] for k in ("mse", "rmse", "mae")}
