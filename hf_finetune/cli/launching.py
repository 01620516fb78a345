"""`hf-finetune launch-config [NAME]` and `hf-finetune train --launch NAME`: the shipped accelerate configs.

The launch configs ship inside the package (`hf_finetune/launch_configs/`), so an installed wheel can
start a multi-process run with no source checkout: `launch-config NAME` prints a config's path for
`accelerate launch --config_file`, and `train --launch NAME` starts that launch itself.
"""

from __future__ import annotations

import subprocess
import sys

from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.recipes import list_launch_configs, resolve_launch_config

LAUNCH_FLAGS = ("--launch",)


def launch_config_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print("hf-finetune launch-config [NAME]: list the shipped accelerate launch configs, or print NAME's path")
        print(
            '  accelerate launch --config_file "$(hf-finetune launch-config cpu_ddp)" -m hf_finetune train --config R'
        )
        return EXIT_OK
    if len(argv) > 1:
        raise UserError(f"launch-config takes one name at most, got {' '.join(argv)}")
    if argv:
        print(resolve_launch_config(argv[0]))
        return EXIT_OK
    configs = list_launch_configs()
    width = max(map(len, configs), default=0) + 2
    for name, path in configs.items():
        first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        print(f"{name:<{width}} {first}")
    return EXIT_OK


def split_launch_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--launch NAME` (or `--launch=NAME`) out of argv; the rest goes to the launched processes."""
    rest, launch, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg in LAUNCH_FLAGS:
            if i + 1 >= len(argv):
                raise UserError("--launch needs a launch config name or path, e.g. --launch cpu_ddp")
            launch, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--launch="):
            launch = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return launch, rest


def relaunch(config: str, argv: list[str], task: str | None) -> int:
    """Run this training under `accelerate launch --config_file CONFIG`; its exit code is ours."""
    path = resolve_launch_config(config)
    target = ["-m", f"hf_finetune.scripts.{task}"] if task else ["-m", "hf_finetune", "train"]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path), *target, *argv]
    print(f"launching: accelerate launch --config_file {path} {' '.join(target[1:] + argv)}", file=sys.stderr)
    return subprocess.run(command, check=False).returncode
