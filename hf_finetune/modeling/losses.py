"""The single-label classification loss: cross-entropy with optional class weights, label smoothing and
soft (mixed) targets, all through `torch.nn.functional.cross_entropy`, so there is one definition of each.

Rules, as torch defines them (and as the tests check in closed form):
- hard labels (class ids): label smoothing eps gives target (1 - eps) * one_hot + eps / C; with class weights
  the loss is the weighted mean sum_i w_{y_i} l_i / sum_i w_{y_i} (the smoothing term weights class c by w_c);
- soft labels (a row per example, e.g. mixup/cutmix's blend of two one-hots): smoothing is applied to the
  blend the same way, and class weights multiply each class's term, -sum_c w_c t_c log p_c, averaged over
  the batch (a plain mean: a soft row has no single class whose weight could normalise it).
Labels of -100 (ignored positions) are skipped, as in every transformers model's loss.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def classification_loss(weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
    """`(logits, labels) -> loss`: class ids (long) or one row of class probabilities per example (float)."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        w = weight.to(logits.device, logits.dtype) if weight is not None else None
        flat = logits.view(-1, logits.shape[-1])
        if labels.is_floating_point():  # soft targets: (batch, classes)
            target = labels.to(logits.dtype).view(-1, logits.shape[-1])
        else:
            target = labels.view(-1)
        return F.cross_entropy(flat, target, weight=w, label_smoothing=label_smoothing)

    return loss
