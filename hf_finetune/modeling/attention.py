"""Attention kernels per precision: to train under bf16 autocast on a CPU, eager attention instead of SDPA.

Measured on a Sapphire Rapids CPU with AMX (MiniLM, 2 threads, torch 2.13, CPU ms). One training step, batch
32 x 48 tokens: fp32 SDPA 967, fp32 eager 904, bf16 SDPA 692, bf16 eager 338. Batch 32 x 128, by part
(forward / backward): fp32 SDPA 740 / 1,413; bf16 SDPA 283 / 1,169; bf16 eager 410 / 586. SDPA's CPU backward
in bf16 eats most of what autocast gains, while its forward is the faster one: so training switches to eager,
and prediction (forward only: 272 ms SDPA vs 345 ms eager per batch of 32 x 128) keeps SDPA. Only the kernel
changes: the weights, and the config.json a run saves, stay what they were.
"""

from __future__ import annotations

from torch import nn


def attention_for(precision: str, device: str) -> str | None:
    """The attention implementation a model should *train* with, or None to keep the checkpoint's."""
    return "eager" if precision == "bf16" and device == "cpu" else None


def use_attention(model: nn.Module, implementation: str | None) -> list[str]:
    """Switch every transformers model inside `model` (a PEFT wrapper, a multi-task encoder) to
    `implementation`; the class names of those switched."""
    from transformers import PreTrainedModel

    if implementation is None:
        return []
    switched = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation not in (implementation, None):
            module.set_attn_implementation(implementation)
            switched.append(type(module).__name__)
    return switched
