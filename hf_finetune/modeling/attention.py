"""Attention kernels per precision: to train under bf16 autocast on a CPU, eager attention instead of SDPA.

Measured on a Sapphire Rapids CPU with AMX (MiniLM, 2 threads, torch 2.13, CPU ms). One training step, batch
32 x 48 tokens: fp32 SDPA 967, fp32 eager 904, bf16 SDPA 692, bf16 eager 338. Batch 32 x 128, by part
(forward / backward): fp32 SDPA 740 / 1,413; bf16 SDPA 283 / 1,169; bf16 eager 410 / 586. SDPA's CPU backward
in bf16 eats most of what autocast gains, while its forward is the faster one: so training steps run eager,
and prediction (forward only: 272 ms SDPA vs 345 ms eager per batch of 32 x 128), the evaluations inside
training included (`prediction_attention`), runs SDPA. Only the kernel changes: the weights, and the
config.json a run saves, stay what they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

# On a model `use_attention` switched: the implementation it had before, which prediction goes back to.
SWITCHED_FROM = "_hf_finetune_attention_before_switch"


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
            if not hasattr(module, SWITCHED_FROM):
                setattr(module, SWITCHED_FROM, module.config._attn_implementation)
            module.set_attn_implementation(implementation)
            switched.append(type(module).__name__)
    return switched


@contextmanager
def prediction_attention(model: nn.Module) -> Iterator[None]:
    """While the block runs (evaluation inside training, prediction after it), the models `use_attention`
    switched go back to their own kernel, faster for a forward pass alone; then training's kernel returns.
    Measured (221 fortunes validation texts, bf16): 0.63 s eager, 0.40 s SDPA per evaluation."""
    switched = [(m, getattr(m, SWITCHED_FROM)) for m in model.modules() if hasattr(m, SWITCHED_FROM)]
    training = [(m, m.config._attn_implementation) for m, _ in switched]
    for module, implementation in switched:
        module.set_attn_implementation(implementation)
    try:
        yield
    finally:
        for module, implementation in training:
            module.set_attn_implementation(implementation)
