"""SIGTERM and Ctrl-C stop a run cleanly: finish the step, save a checkpoint, say how to resume.

Spot instances and SLURM time limits send SIGTERM and allow some seconds of grace; a user
presses Ctrl-C. The first signal only raises a flag; the trainer agrees on it across
processes at the next step (`StrategyTrainer.training_step`: every process stops at the same
step, none is left waiting in an all-reduce), saves a complete checkpoint and stops; the run
then exits with 128 + the signal number (130 SIGINT, 143 SIGTERM) instead of writing a final
model. Ctrl-C a second time exits at once. A repeated SIGTERM is ignored: launchers and
schedulers deliver it twice (SLURM signals every process of the job, and torchrun forwards its
own SIGTERM to the workers), and they send SIGKILL themselves when their grace period ends.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from transformers import TrainerCallback

from hf_finetune.errors import UserError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(UserError):
    """A run stopped by a signal after saving a checkpoint: exit code 128 + signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopOnSignal(TrainerCallback):
    def __init__(self):
        self.received: int | None = None  # the first signal, set by the handler
        self.agreed = False  # every process saw a signal by this step (set by the trainer)
        self.stopped_at: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (e.g. not in a notebook worker)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:  # Ctrl-C twice: the user means it
            os._exit(128 + signum)
        if self.received is None:
            self.received = signum
            print(
                f"\n[hf_finetune] {signal.Signals(signum).name} received: finishing this step, saving a checkpoint, "
                f"then stopping{' (Ctrl-C again to quit at once)' if signum == signal.SIGINT else ''}",
                file=sys.stderr,
                flush=True,
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.agreed and self.stopped_at is None:
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control
