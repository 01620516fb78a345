"""The output folder: what a finished run leaves, and how a finished run is recognised.

A run writes `run_complete.json` last. A folder without it is an unfinished run and
is never mistaken for a model; a folder with it is never overwritten unless the
user asks (`--overwrite_output_dir`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hf_finetune.errors import UserError, first_line

COMPLETE_MARKER = "run_complete.json"
RUN_CONFIG = "run_config.yaml"
METRICS = "metrics.json"
MISCLASSIFIED = "misclassified.jsonl"
LARGEST_ERRORS = "largest_errors.jsonl"  # regression: every example, largest error first


def is_finished(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def check_output_dir(folder: Path, overwrite: bool) -> None:
    """Refuse, before any work, to clobber a finished run or to write into a file."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output_dir {folder} is a file; choose a folder path")
    if is_finished(folder) and not overwrite:
        raise UserError(
            f"{folder} already holds a finished run; pass --overwrite_output_dir to replace it or choose "
            "another --output_dir"
        )


def nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: Path) -> None:
    """Write (and delete) a probe file where the output folder is or will be: a read-only mount or a
    path under a file fails here, before training, rather than at the first checkpoint. Nothing is left."""
    existing = nearest_existing(folder.expanduser().absolute())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to output_dir {folder} ({first_line(exc)}); choose a writable --output_dir"
        ) from None


def check_free_space(folder: Path, needed: int) -> None:
    """Refuse a run whose first checkpoint and final model cannot fit (`needed` bytes, estimated)."""
    free = shutil.disk_usage(nearest_existing(folder.expanduser().absolute())).free
    if free < needed:
        raise UserError(
            f"not enough disk space for output_dir {folder}: a checkpoint and the final model need about "
            f"{needed / 1e9:.2f} GB and {free / 1e9:.2f} GB is free; free some space or choose another --output_dir"
        )


def prepare_output_dir(folder: Path, overwrite: bool) -> None:
    """Called once every input check has passed: clear a run being replaced, then create."""
    if overwrite and (is_finished(folder) or (folder / RUN_CONFIG).is_file()):
        # Only a folder we wrote (a finished or unfinished run of ours) is removed: never a user's folder.
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def mark_complete(folder: Path, summary: dict) -> None:
    write_json(folder / COMPLETE_MARKER, summary)
