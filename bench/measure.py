"""What the harness measures, as small pure functions: tokens and padding, peak memory, MFU.

Padding is the main cost a batching strategy controls: a batch padded to its longest member
computes on `batch x longest` positions whatever the real lengths are. "Real" tokens are the
non-pad positions (attention mask 1); "padded" tokens are every position the model computed on.
"""

from __future__ import annotations

import resource
import sys

# Dense bf16 peak FLOP/s of the accelerators we know (datasheet numbers, no sparsity). MFU is reported
# only when the device is in this table: a guessed peak would give a made-up utilisation.
PEAK_BF16_FLOPS = {
    "H100": 989e12,  # SXM; the PCIe card's 756e12 is matched first below
    "H100 PCIe": 756e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "A10G": 70e12,
}


def batch_token_counts(batch) -> tuple[int, int]:
    """(real, padded) tokens of one collated batch: mask ones, and every position of `input_ids`."""
    padded = int(batch["input_ids"].numel())
    mask = batch.get("attention_mask")
    real = int(mask.sum()) if mask is not None else padded
    return real, padded


def padding_share(real: int, padded: int) -> float:
    """Share of the computed positions that were padding (0 when nothing was computed)."""
    return 1.0 - real / padded if padded else 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports kibibytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def non_embedding_parameters(model) -> int:
    """Parameters outside embedding tables: the ones every token multiplies through (Kaplan et al. 2020)."""
    import torch

    embedding = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embedding)


def model_flops_utilisation(non_embedding_params: int, tokens_per_second: float, peak_flops: float) -> float:
    """Training MFU: ~6 FLOPs per parameter per token (2 forward, 4 backward) over the device's peak."""
    return 6 * non_embedding_params * tokens_per_second / peak_flops


def device_peak_flops() -> tuple[str, float] | None:
    """(device name, bf16 peak FLOP/s) of the current CUDA device, or None (no GPU, or one we have no number for)."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if key in name:
            return name, PEAK_BF16_FLOPS[key]
    return None
