"""Attention kernels per precision: under bf16 autocast on a CPU, eager attention instead of SDPA.

Measured on a Sapphire Rapids CPU with AMX (MiniLM, one training step, batch 32 x 48 tokens, 2 threads,
torch 2.13, CPU ms): fp32 SDPA 967, fp32 eager 904, bf16 SDPA 692, bf16 eager 338. SDPA's CPU backward in
bf16 ate most of what autocast gains; eager attention's matmuls go to oneDNN's bf16 kernels like every other
layer's. Only the kernel changes: the weights, and the config.json a run saves, stay what they were.
"""

from __future__ import annotations

from torch import nn


def attention_for(precision: str, device: str) -> str | None:
    """The attention implementation a model should run with, or None to keep the checkpoint's."""
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
