"""`hf-finetune`: dispatch to the command table, and turn bad input into one line and exit code 2.

Config fields are `--snake_case` (hyphens accepted too); command-only flags use
hyphens. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

from hf_finetune.cli.commands import COMMANDS, find
from hf_finetune.cli.train import train_main
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.version import VERSION


def usage() -> str:
    lines = ["usage: hf-finetune [--version] COMMAND [options]", "", "commands:"]
    lines += [f"  {c.name:<12} {c.summary}" for c in COMMANDS.values()]
    lines += ["", "Run `hf-finetune COMMAND --help` for a command's options."]
    return "\n".join(lines)


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"hf-finetune {VERSION}")
        return EXIT_OK
    command = find(argv[0])
    if command is None:
        raise UserError(f"unknown command '{argv[0]}'; commands: {', '.join(COMMANDS)}")
    return command.run(argv[1:])


def run_guarded(fn, *args) -> int:
    """Turn UserError into one line on stderr and exit code 2, everything else stays a traceback."""
    try:
        return fn(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # silence fork warnings from the Rust tokenizer
    return run_guarded(dispatch, sys.argv[1:] if argv is None else argv)


def task_entry_point(task: str, argv: list[str] | None = None) -> int:
    """What `tasks/<task>.py` runs: `train` with the task fixed."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    prog = f"tasks/{task}.py"
    return run_guarded(train_main, sys.argv[1:] if argv is None else argv, task, prog)
