"""What this machine offers for arithmetic: the CPU's name and flags, native bf16, measured matmul rates.

Machines of the same size carry different CPUs (AVX2 only; AVX-512 with bf16; AMX), and bf16 autocast is
2-3x faster than fp32 on the second kind and ~20x slower on the first. So precision is decided per
machine: the flags say what the CPU can do, and a short matmul probe says whether it pays. The probe's
answer is cached per machine (CPU model, flags, torch version, threads), so a run pays it once, and the
processes of one launch read one answer instead of each timing its own (they would disagree by noise).
The bench reuses the same probe, at a larger size, as the hardware's peak.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# A CPU with one of these runs bf16 matmuls natively (oneDNN's AVX512-BF16 or AMX kernels).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags that decide which kernels run, reported with every measurement.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")
PROBE_SIZE, PROBE_SECONDS = 1024, 0.25


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: tuple[str, ...]  # the REPORTED_FLAGS this CPU has
    threads: int  # what torch computes with

    def describe(self) -> str:
        """`Intel(R) Xeon(R) Processor, 2 threads, avx2 avx512f avx512_bf16 amx_tile amx_bf16`."""
        return f"{self.model}, {self.threads} thread{'s' if self.threads != 1 else ''}, {' '.join(self.flags) or '-'}"


def cpu_info() -> CpuInfo:
    import torch

    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux; elsewhere the flags stay unknown and only the probe decides
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    return CpuInfo(model, tuple(f for f in REPORTED_FLAGS if f in flags), torch.get_num_threads())


def cpu_has_native_bf16(info: CpuInfo | None = None) -> bool:
    """The CPU's flags say bf16 and torch's oneDNN agrees (it checks the same CPUID bits, plus its own build)."""
    import torch

    info = info or cpu_info()
    flags_say = any(f in info.flags for f in NATIVE_BF16_FLAGS)
    return flags_say and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def matmul_rate(dtype_name: str, size: int = PROBE_SIZE, seconds: float = PROBE_SECONDS) -> float:
    """Dense matmul FLOP/s of square `size` matrices in `dtype_name` (fp32 or bf16) on the CPU, best of
    repeated timings over about `seconds` (the best is the machine's rate; slower ones are interference)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    torch.matmul(a, b)  # warm-up: oneDNN picks and caches its kernel
    best, deadline = float("inf"), time.perf_counter() + seconds
    while True:
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
        if time.perf_counter() > deadline:
            return 2 * size**3 / best


@dataclass(frozen=True)
class MatmulRates:
    """The probe's answer for one machine: FLOP/s in fp32 and bf16, and what it ran on."""

    fp32: float
    bf16: float
    cpu: str
    torch: str

    @property
    def bf16_speedup(self) -> float:
        return self.bf16 / self.fp32


def cache_dir() -> Path:
    """`$HF_FINETUNE_CACHE`, else `$XDG_CACHE_HOME/hf_finetune`, else `~/.cache/hf_finetune`."""
    if os.environ.get("HF_FINETUNE_CACHE"):
        return Path(os.environ["HF_FINETUNE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hf_finetune"


def measured_matmul_rates(info: CpuInfo | None = None) -> MatmulRates:
    """The cached probe for this machine, measuring it (about half a second) the first time.

    A file lock makes the processes of one launch wait for one measurement instead of racing; a cache that
    cannot be written (read-only home) costs a probe per run, not an error.
    """
    import torch
    from filelock import FileLock

    info = info or cpu_info()
    key = hashlib.sha1(f"{info.describe()}|{torch.__version__}".encode()).hexdigest()[:16]
    path = cache_dir() / f"matmul-{key}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                return MatmulRates(**json.loads(path.read_text(encoding="utf-8")))
            rates = _probe(info)
            path.write_text(json.dumps(asdict(rates), indent=2) + "\n", encoding="utf-8")
            return rates
    except OSError:
        return _probe(info)


def _probe(info: CpuInfo) -> MatmulRates:
    import torch

    return MatmulRates(matmul_rate("fp32"), matmul_rate("bf16"), info.describe(), torch.__version__)
