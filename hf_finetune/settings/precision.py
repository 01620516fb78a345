"""Which arithmetic a run trains and predicts in: `precision: auto | fp32 | bf16 | fp16`.

`auto` (the default) takes what is fastest on the machine at hand without costing accuracy:
- CUDA: bf16 where the GPU supports it (no loss scaling needed), else fp16 with loss scaling;
- CPU: bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX) *and* the cached matmul probe
  measured bf16 at least `MIN_BF16_SPEEDUP` x fp32; else fp32 (on AVX2-only CPUs bf16 is emulated and
  ~20x slower);
- other accelerators (Apple MPS, Intel XPU): fp32, not measured here.
An explicit value always wins, on the command line, in a recipe, or as `--bf16`/`--fp16` or a launch
config's `mixed_precision`. `$HF_FINETUNE_PRECISION` pins what `auto` means on a machine or in a job
script (a cluster that wants every run in one precision; the test suite, so results do not depend on which
CPU CI drew). Master weights stay fp32 either way: autocast only lowers the matmuls, and saved models are fp32.

A recipe whose accuracy bf16 measurably costs (more than a point, docs/precision.md) sets `precision: fp32`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hf_finetune.errors import UserError
from hf_finetune.settings.hardware import cpu_has_native_bf16, cpu_info, measured_matmul_rates

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_ENV = "HF_FINETUNE_PRECISION"
# bf16 must beat fp32 by this much on the matmul probe before auto takes it: a whole MiniLM step gains
# less than the matmuls do (2.7x step at 6x matmul here), and a marginal gain is not worth the rounding.
MIN_BF16_SPEEDUP = 1.5


@dataclass(frozen=True)
class Hardware:
    """What the resolver needs to know about the machine; `detect_hardware` fills it, tests write it."""

    device: str  # cuda, cpu, mps, xpu
    cuda_bf16: bool = False
    cpu_native_bf16: bool = False
    cpu_bf16_speedup: float | None = None  # the matmul probe's bf16/fp32 rate; None: not measured


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # fp32, bf16 or fp16
    requested: str  # what was asked: auto, or an explicit value
    reason: str

    def describe(self) -> str:
        return f"{self.precision} ({self.reason})"


def autocast(precision: str, device_type: str):
    """The autocast context a forward pass in `precision` runs under (disabled for fp32): one place for every
    inference path (single models, multi-task heads), so they lower the same operations."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)


def check_precision(value: str, source: str = "precision") -> str:
    if value not in PRECISIONS:
        raise UserError(f"{source} must be one of {', '.join(PRECISIONS)}, not '{value}'")
    return value


def choose_precision(requested: str, hardware: Hardware) -> PrecisionChoice:
    """The precision for `requested` on `hardware`; fp16 on a CPU is refused (loss scaling is for GPUs)."""
    check_precision(requested)
    if requested == "fp16" and hardware.device == "cpu":
        raise UserError(
            "fp16 mixed precision needs a CUDA GPU and this machine has none; use --bf16 or --precision auto on CPUs "
            "(or launch with accelerate_configs/cpu.yaml)"
        )
    if requested != "auto":
        return PrecisionChoice(requested, requested, "asked for")
    if hardware.device == "cuda":
        if hardware.cuda_bf16:
            return PrecisionChoice("bf16", "auto", "the GPU supports bf16")
        return PrecisionChoice("fp16", "auto", "the GPU has no bf16; fp16 with loss scaling")
    if hardware.device != "cpu":
        return PrecisionChoice("fp32", "auto", f"mixed precision on {hardware.device} is not measured here")
    if not hardware.cpu_native_bf16:
        return PrecisionChoice("fp32", "auto", "the CPU has no native bf16 (AVX512-BF16 or AMX)")
    speedup = hardware.cpu_bf16_speedup or 0.0
    if speedup < MIN_BF16_SPEEDUP:
        return PrecisionChoice(
            "fp32", "auto", f"bf16 matmuls measured {speedup:.1f}x fp32 here, below the {MIN_BF16_SPEEDUP}x that pays"
        )
    return PrecisionChoice("bf16", "auto", f"native bf16 CPU, bf16 matmuls measured {speedup:.1f}x fp32")


def detect_hardware(device: str) -> Hardware:
    """The machine's answers for `device` (`cuda`, `cpu`, ...); the matmul probe runs only where it can matter."""
    import torch

    if device == "cuda":
        return Hardware("cuda", cuda_bf16=torch.cuda.is_bf16_supported())
    if device != "cpu":
        return Hardware(device)
    info = cpu_info()  # read once: both questions are about the same CPU
    native = cpu_has_native_bf16(info)
    speedup = measured_matmul_rates(info).bf16_speedup if native else None
    return Hardware("cpu", cpu_native_bf16=native, cpu_bf16_speedup=speedup)


def machine_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    xpu = getattr(torch, "xpu", None)
    return "xpu" if xpu is not None and xpu.is_available() else "cpu"


def resolve_auto(requested: str, device: str | None = None) -> PrecisionChoice:
    """`requested` on this machine: `auto` reads `$HF_FINETUNE_PRECISION` first, then the hardware."""
    check_precision(requested)
    device = device or machine_device()
    pinned = os.environ.get(PRECISION_ENV, "").strip()
    if requested == "auto" and pinned and pinned != "auto":
        check_precision(pinned, f"${PRECISION_ENV}")
        choice = choose_precision(pinned, Hardware(device))
        return PrecisionChoice(choice.precision, "auto", f"pinned by ${PRECISION_ENV}")
    if requested != "auto":
        return choose_precision(requested, Hardware(device))
    return choose_precision("auto", detect_hardware(device))


def launcher_precision(args) -> tuple[str, str] | None:
    """(precision, where it was asked) from `--bf16`/`--fp16` or the launch config's `mixed_precision`; None when
    neither asked. A launch config's `no` is accelerate's default, not a choice, so it leaves `auto` to decide."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    asked = [(p, f"--{p}") for p in ("bf16", "fp16") if getattr(args, p)]
    if launcher in ("bf16", "fp16"):
        asked.append((launcher, f"the launch config's mixed_precision {launcher}"))
    if len({p for p, _ in asked}) > 1:
        raise UserError(f"{' and '.join(w for _, w in asked)} ask for different precisions; pass one")
    return asked[0] if asked else None


def resolve_training_precision(args) -> PrecisionChoice:
    """The run's precision from `args.precision` and the older switches, set on `args` as Trainer reads it
    (`bf16`/`fp16`), before TrainingArguments sets up the Accelerator."""
    requested = check_precision(args.precision, "--precision")
    flagged = launcher_precision(args)
    if flagged and requested not in ("auto", flagged[0]):
        raise UserError(f"--precision {requested} and {flagged[1]} disagree; pass one of them")
    choice = resolve_auto(flagged[0] if flagged else requested, "cpu" if args.use_cpu else None)
    if flagged:
        choice = PrecisionChoice(choice.precision, flagged[0], f"asked for by {flagged[1]}")
    args.precision, args.bf16, args.fp16 = choice.precision, choice.precision == "bf16", choice.precision == "fp16"
    return choice
