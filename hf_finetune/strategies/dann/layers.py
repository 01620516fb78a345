"""The pieces of domain-adversarial training (DANN, Ganin et al. 2016, https://arxiv.org/abs/1505.07818).

A domain classifier learns to tell source examples from target examples by the pooled features;
between it and the encoder sits a gradient-reversal layer, the identity going forward and
`-lambda x gradient` going back. The domain classifier therefore gets better at telling the
domains apart while the encoder is pushed towards features it cannot tell apart: features that
still classify the labelled source data but no longer say which domain an example came from.
`lambda` rises from 0 to its maximum over training (`reversal_weight`), so the domain
classifier's early, noisy gradients do not disturb the encoder before the labels shape it.

The strategy that uses these pieces is `hf_finetune.strategies.dann`; the unlabelled target
examples travel through the ordinary data pipeline with the label -100 (`TARGET_LABEL`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hf_finetune.errors import UserError

# Target-domain training examples have no label; -100 is the index cross-entropy ignores, so the label
# column alone says which domain an example belongs to (no extra column to carry through tokenizer
# maps, image transforms, collators and Trainer's `remove_unused_columns`).
TARGET_LABEL = -100


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times `-weight` backward (no gradient for the weight itself)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.weight * grad_output, None


def reverse_gradient(features: torch.Tensor, weight: float) -> torch.Tensor:
    return GradientReversal.apply(features, weight)


def reversal_weight(progress: float, max_weight: float = 1.0, gamma: float = 10.0) -> float:
    """`max_weight x (2 / (1 + exp(-gamma x p)) - 1)` at training progress `p` in [0, 1] (Ganin et al., sec. 5.2.2):
    0 at the start, rising monotonically, within 0.01% of `max_weight` at the end for gamma = 10."""
    p = min(max(progress, 0.0), 1.0)
    return max_weight * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class DomainClassifier(nn.Module):
    """features -> one logit, target vs source: two hidden ReLU layers, as Ganin et al.'s domain classifiers."""

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        # Not `layers`: ViT's save_pretrained renames every `layers.` key to the legacy `encoder.layer.`.
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


def classification_layer(model: nn.Module) -> nn.Linear:
    """The linear layer that outputs the class logits: the last `nn.Linear` outside the base model with one
    output per label. Its input is the pooled feature vector in every family (BERT's dropped-out pooler
    output, ViT's [CLS] after the final norm, DistilBERT's `pre_classifier` output, RoBERTa's head dense)."""
    base = model.base_model
    in_base = {id(m) for m in base.modules()}
    num_labels = model.config.num_labels
    candidates = [
        m for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in in_base and m.out_features == num_labels
    ]
    if not candidates:
        raise UserError(
            f"dann cannot find the classification layer of {type(model).__name__} (a linear layer with "
            f"{num_labels} outputs outside the base model); it needs a sequence or image classification model"
        )
    return candidates[-1]


def safe_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled (source) examples; 0 when the batch holds none. The models' own
    loss is the mean over zero examples there: NaN, which would stop the run as diverged."""
    labelled = (labels != TARGET_LABEL).sum().clamp(min=1)
    total = nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=TARGET_LABEL, reduction="sum"
    )
    return total / labelled
