"""Pictures of a run: confusion matrix and loss curves, as PNG files in the output folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


# Counts in the cells are readable up to ~30 classes. Food-101's 101 classes would need a 62-inch
# (7,500 px) figure and ~10,000 text labels: measured 30 s and 2.5 MB for one PNG. Larger matrices
# are drawn in colour only on a capped canvas (~4 s, 0.27 MB); the counts stay in `confusion_matrix.json`.
MAX_ANNOTATED_CLASSES = 30
MAX_FIGURE_INCHES = 16.0  # 1,920 px at 120 dpi: 101 tick labels at 5 pt still fit


def save_confusion_matrix_png(labels: list[str], matrix: list[list[int]], path: Path, title: str) -> None:
    plt = load_pyplot()
    matrix = np.asarray(matrix)
    annotate = len(labels) <= MAX_ANNOTATED_CLASSES
    size = min(MAX_FIGURE_INCHES, max(4.0, 0.6 * len(labels) + 2))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    tick_size = None if annotate else 5
    ax.set_xticks(range(len(labels)), labels, rotation=45 if annotate else 90, ha="right", fontsize=tick_size)
    ax.set_yticks(range(len(labels)), labels, fontsize=tick_size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix) if annotate else ():
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_loss_curves_png(log_history: list[dict], path: Path) -> None:
    """Training loss per logging step and validation loss per evaluation, against the step."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if not train and not evals:
        return
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train loss"), (evals, "validation loss")):
        if points:
            ax.plot(*zip(*points, strict=True), marker="o" if label.startswith("val") else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_scatter_png(gold, predicted, path: Path, title: str, target: str) -> None:
    """Regression: each example's prediction against its target, with the y = x line."""
    plt = load_pyplot()
    gold, predicted = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(gold, predicted, s=8, alpha=0.5)
    low, high = float(min(gold.min(), predicted.min())), float(max(gold.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="y = x")
    ax.set_xlabel(f"target ({target})")
    ax.set_ylabel("prediction")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
