"""What the harness measures, as small pure functions: tokens and padding, peak memory, MFU, and the
share of this CPU's measured matmul peak a training run achieved (the CPU analogue of MFU).

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
# The bench's CPU peak probe: square matmuls large enough to run oneDNN's best kernels at full rate (2 x 2048^3 =
# 17 GFLOP a call), timed for about a second each, so the best call is the machine's rate and not a warm-up's.
PEAK_PROBE_SIZE, PEAK_PROBE_SECONDS = 2048, 1.0


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


def model_shape(model) -> dict:
    """Non-embedding parameters, layers and hidden size: what the training FLOPs per token are made of."""
    config = model.config
    return {
        "non_embedding_params": non_embedding_parameters(model),
        "n_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
    }


def training_flops_per_token(non_embedding_params: int, n_layers: int, seq_len: float, hidden: int) -> float:
    """FLOPs one token costs in a training step: 6 x N for the weights (2 forward, 4 backward), plus attention.

    Attention's scores (QK^T) and its weighted sum (AV) cost 2 x seq_len x hidden FLOPs each per token and
    layer forward, 2 x 2 x n_layers x seq_len x hidden; backward twice that, so 6 x 2 x n_layers x seq_len x
    hidden in all. `seq_len` is the average padded length: per-batch lengths would weigh long batches more
    (attention grows with length squared), but at MiniLM's ~40-128 tokens against 384 hidden and 11M
    weights the attention term is 1-2% of the total, so the average is close enough."""
    return 6 * non_embedding_params + 6 * 2 * n_layers * seq_len * hidden


def cpu_peak_flops(size: int = PEAK_PROBE_SIZE, seconds: float = PEAK_PROBE_SECONDS) -> dict[str, float]:
    """This CPU's dense matmul FLOP/s in fp32 and bf16, measured now (not the precision resolver's cached
    smaller probe: the bench wants the peak of the machine as it is during this invocation)."""
    from hf_finetune.settings.hardware import matmul_rate

    return {dtype: matmul_rate(dtype, size, seconds) for dtype in ("fp32", "bf16")}
