"""One run per output folder: a second `train` into a folder another run is writing is refused.

Two runs in one folder would interleave checkpoints, rotate each other's files away and leave
a model nobody trained. The lock is an OS file lock (`filelock.FileLock`, `flock` on Linux and
macOS), so it dies with its process: a run killed with SIGKILL, or a machine that lost power,
leaves no lock behind that someone has to delete by hand; the next run simply takes it. The
file that carries the lock is never deleted (deleting a lock file on release lets two later
runs lock two different files of the same name).

Where: beside the output folder, `<parent>/.<name>.lock`, not inside it: `--overwrite_output_dir`
removes the folder, lock file included, while the run holds it. A small `.<name>.lock.json`
beside it says who holds the lock (host, process id, command, start time), for the refusal message
only; the lock itself is the OS lock, never that file.

Under DDP, or several machines sharing one folder, only the global main process takes the lock
(it is the one that writes the folder) and tells every other process whether it got it, so all
ranks stop together with the same one-line error rather than hanging in the next collective.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from accelerate.utils import broadcast_object_list
from filelock import FileLock, Timeout

from hf_finetune.errors import UserError, first_line

logger = logging.getLogger("hf_finetune")


def lock_paths(out: Path) -> tuple[Path, Path]:
    """(the lock file, the holder note) of output folder `out`."""
    out = out.expanduser().absolute()
    return out.parent / f".{out.name}.lock", out.parent / f".{out.name}.lock.json"


def describe_holder(note: Path) -> str:
    try:
        holder = json.loads(note.read_text(encoding="utf-8"))
        return f" (process {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def shown_command() -> str:
    """This process's command line with any token's value replaced by `***` (`--hub_token X`, `--hub_token=X`)."""
    words, hide_next = [], False
    for arg in sys.argv:
        if hide_next:
            words.append("***")
        elif "token" in arg.lower():
            words.append(arg.split("=", 1)[0] + ("=***" if "=" in arg else ""))
        else:
            words.append(arg)
        hide_next = "token" in arg.lower() and "=" not in arg
    return " ".join(words)


class RunLock:
    """The lock of one output folder, held from `acquire` until `release` (or the process ends)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path, self.note = lock_paths(self.out)
        self.lock: FileLock | None = None

    def acquire(self) -> None:
        self.acquire_quietly()
        stale = describe_holder(self.note)
        if stale:  # the note of a run that ended without releasing: killed, or its machine went down
            logger.info("took over the lock of %s from a run that stopped without releasing it%s", self.out, stale)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": shown_command()[:300],
        }
        self.note.write_text(json.dumps(holder) + "\n", encoding="utf-8")

    def acquire_quietly(self) -> None:
        """Take the OS lock (refused at once when held), without writing or reading the holder note."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.path), timeout=0)  # timeout 0: refuse at once, never queue behind a run
            lock.acquire()
        except Timeout:
            raise UserError(
                f"output_dir {self.out} is in use by another run{describe_holder(self.note)}; wait for it to end, "
                "stop it (Ctrl-C saves a checkpoint; re-running then resumes), or choose another --output_dir"
            ) from None
        except OSError as exc:
            raise UserError(
                f"cannot lock output_dir {self.out} ({first_line(exc)}); choose another --output_dir"
            ) from None
        self.lock = lock

    def release(self) -> None:
        if self.lock is not None:
            self.note.unlink(missing_ok=True)  # first: a note without a held lock reads as a stale one
            self.lock.release()
            self.lock = None


def lock_output_dir(out: Path, state) -> RunLock:
    """Lock `out` for this run: the main process takes the lock; every process learns the outcome."""
    run_lock, refusal = RunLock(out), None
    if state.is_main_process:
        try:
            run_lock.acquire()
        except UserError as exc:
            refusal = str(exc)
    if state.num_processes > 1:
        box = [refusal]
        broadcast_object_list(box, from_process=0)
        refusal = box[0]
    if refusal:
        raise UserError(refusal)
    return run_lock


def check_not_in_use(out: Path, state) -> None:
    """Refuse at once, before minutes of loading, when another run holds `out` (single-process runs).

    A probe: take the lock and give it back. The lock that protects the folder is the one
    `lock_output_dir` takes after the checks; this only makes the common case fail fast.
    Several processes skip the probe: ranks on one machine probing together would refuse each other.
    Nothing is created: without a lock file no run can hold the folder.
    """
    probe = RunLock(out)
    if state.num_processes == 1 and probe.path.is_file():  # no lock file: no run holds it (and none is made)
        probe.acquire_quietly()
        probe.lock.release()
