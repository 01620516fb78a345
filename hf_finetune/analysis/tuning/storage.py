"""Where a study lives, and how workers share it: storage URLs, the local lock, stale trials.

Default: a SQLite file in the output folder, so the same command after a crash or `kill -9` continues the
study. Any SQLAlchemy URL Optuna accepts (PostgreSQL, MySQL) or `journal:PATH` (Optuna's journal file,
good on NFS) lets several processes or machines work on one study.

A worker that dies mid-trial leaves the trial RUNNING for ever. Optuna's own heartbeat only runs inside
`study.optimize` (this tuner asks and tells itself, to count the study's budget exactly), so workers record
their host, pid and a heartbeat in each running trial's user attributes. A RUNNING trial is stale when its
process is gone (same host: checked at once) or its heartbeat is older than `STALE_AFTER_S` (any host);
a stale trial is marked FAIL and re-queued with the same parameters and the same folder, whose
checkpoints let the new attempt resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from pathlib import Path

import optuna
from filelock import FileLock
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from hf_finetune.errors import UserError, first_line

logger = logging.getLogger("hf_finetune")

DEFAULT_DB = "study.db"
JOURNAL_PREFIX = "journal:"
# A running trial writes its heartbeat this often (seconds) ...
HEARTBEAT_S = 30
# ... and counts as dead when no heartbeat came for this long: 20 missed beats, so a slow evaluation or a
# busy database never fails a live trial; a dead one on another machine waits at most this long.
STALE_AFTER_S = 600
# SQLite: how long a writer waits for another worker's transaction before "database is locked".
SQLITE_TIMEOUT_S = 120


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / DEFAULT_DB).resolve()}"


def local_file(url: str) -> Path | None:
    """The file behind a SQLite or journal storage (workers on this machine lock it), else None."""
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX) :]).expanduser().resolve()
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///") :]).resolve()
    return None


def open_storage(url: str):
    """An Optuna storage for `url`; a URL that cannot be opened is a one-line error. Workers starting together
    on one new SQLite file would both create its tables: on this machine they take turns."""
    path = local_file(url)
    with study_lock(url) if path is not None and path.parent.is_dir() else contextlib.nullcontext():
        return open_unlocked(url)


def open_unlocked(url: str):
    try:
        if url.startswith(JOURNAL_PREFIX):
            path = local_file(url)
            if not path.parent.is_dir():
                raise UserError(f"--storage {url}: folder {path.parent} does not exist")
            return JournalStorage(JournalFileBackend(str(path)))
        engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy's errors for a bad scheme, host, file or driver are many types
        raise UserError(
            f"cannot open --storage {url}: {first_line(exc)}. Use sqlite:///PATH, journal:PATH, or a database URL "
            "such as postgresql://user@host/db"
        ) from None


def study_lock(url: str):
    """A file lock beside a local storage: counting the budget and starting a trial happen as one step, so
    workers on this machine never overshoot `--n_trials`. Remote databases get no lock (see docs/tuning.md)."""
    path = local_file(url)
    return FileLock(str(path) + ".lock") if path is not None else contextlib.nullcontext()


def worker_attrs() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead for us
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def is_stale(trial, now: float, locked: bool) -> bool:
    attrs = trial.user_attrs
    if "pid" not in attrs:
        # Workers start a trial and stamp it under the lock we hold (`locked`): unstamped, its worker died
        # in between. Without a lock (remote database) it may be starting right now: judge it by its age.
        return locked or (now - trial.datetime_start.timestamp() > STALE_AFTER_S if trial.datetime_start else False)
    if attrs.get("host") == socket.gethostname() and attrs["pid"] != os.getpid():
        return not process_alive(attrs["pid"])
    return now - attrs.get("heartbeat", 0) > STALE_AFTER_S


def requeue(study, trial, why: str) -> None:
    """Fail `trial` and queue a copy (same parameters, same folder) for the next free worker."""
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except Exception:  # another worker finished or failed it first: it re-queues, not us
        return
    attrs = {"folder": trial.user_attrs.get("folder"), "retry_of": trial.number}
    study.enqueue_trial(trial.params, user_attrs={k: v for k, v in attrs.items() if v is not None})
    logger.info("trial %d %s: marked failed and queued again (its folder's checkpoints are reused)", trial.number, why)


def release_stale(study, locked: bool) -> None:
    """Re-queue the RUNNING trials whose worker is gone; `locked`: called under `study_lock`."""
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(trial, now, locked):
            requeue(study, trial, "lost its worker")


class Heartbeat:
    """A thread that stamps the running trial every `HEARTBEAT_S` seconds, from setup to the last evaluation."""

    def __init__(self, trial):
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self.beat, daemon=True, name="tune-heartbeat")

    def beat(self):
        while not self.stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one retries
                self.trial.set_user_attr("heartbeat", time.time())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
