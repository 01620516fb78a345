"""Classification metrics from scikit-learn, with `evaluate` for extra ones a recipe names.

`evaluate.load("accuracy")` downloads the metric's code from the Hub, which fails
offline, so the built-in metrics come from scikit-learn. `evaluate` remains the way
to add others (`extra_metrics: [path/to/metric.py]` or a Hub id when online).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import UserError, first_line


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


def make_multilabel_compute_metrics(threshold: float) -> Callable:
    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predicted = multilabel_predictions(logits, threshold)
        return multilabel_scores(eval_pred.label_ids.astype(int), predicted)

    return compute_metrics


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
