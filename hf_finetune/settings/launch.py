"""What the launcher asked for, checked against what this machine has, before any work.

`accelerate launch --config_file X.yaml` hands its choices to the training processes
as environment variables (`ACCELERATE_MIXED_PRECISION`, `ACCELERATE_USE_DEEPSPEED`,
`ACCELERATE_USE_FSDP`). A choice this machine cannot honour would otherwise fail deep
inside autocast or the DeepSpeed engine after the data is loaded, or, worse, run in a
mode nobody asked for; here it is one line, exit code 2, before the output folder exists.
"""

from __future__ import annotations

import os

from hf_finetune.errors import UserError

INSTALL_DEEPSPEED = 'pip install -c constraints.txt -e ".[deepspeed]"'


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def launched_with(training_args) -> dict[str, bool]:
    """The launch choices that need hardware or optional packages, from the flags and the launcher."""
    return {
        "deepspeed": bool(training_args.deepspeed) or _env_flag("ACCELERATE_USE_DEEPSPEED"),
        "fsdp": bool(training_args.fsdp) or _env_flag("ACCELERATE_USE_FSDP"),
    }


def check_launch_environment(training_args) -> None:
    from accelerate.utils import is_deepspeed_available

    wanted = launched_with(training_args)
    gpu = has_accelerator()
    if wanted["deepspeed"] and not is_deepspeed_available():
        raise UserError(
            f"this launch config uses DeepSpeed, which is not installed; install the extra ({INSTALL_DEEPSPEED}) "
            "or launch with accelerate_configs/multi_gpu.yaml"
        )
    if not gpu:  # (fp16 on a CPU is refused where the precision is chosen: settings/precision.py)
        for name, label in (("fsdp", "FSDP"), ("deepspeed", "DeepSpeed")):
            if wanted[name]:
                raise UserError(
                    f"this launch config uses {label}, which needs GPUs, and this machine has none; for several "
                    "processes on CPUs launch with accelerate_configs/cpu_ddp.yaml"
                )


def has_accelerator() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def run_on_cpu_without_accelerators(training_args) -> None:
    """On a machine without GPUs, say so to TrainingArguments (`use_cpu`) before it sets up devices.

    Without it, several processes started by accelerate's launcher (torchrun, `cpu_ddp.yaml`) each
    trained alone on their own copy of the model (accelerate does not pass `use_cpu` on to them),
    and `--bf16`, which runs on CPUs, was refused as "bf16/gpu not supported".
    """
    if not has_accelerator():
        training_args.use_cpu = True
