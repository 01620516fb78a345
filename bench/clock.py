"""Where a training run's time goes, from Trainer's own callback events (no patching).

Wall and process CPU time between `on_train_begin` and `on_train_end`, and the part of it spent
inside optimizer steps (forward, backward, optimizer: `on_step_begin` to `on_step_end`). The rest
is batch loading, logging, evaluation and checkpoint saving. CPU time counts every thread of the
process: on a machine other jobs share, it measures the work done where wall time measures the wait.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback


class TrainClock(TrainerCallback):
    def __init__(self):
        self.wall = self.cpu = self.in_steps = self.cpu_in_steps = 0.0
        self.evaluation = 0.0
        self._started = self._step_started = self._eval_started = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = (time.perf_counter(), time.process_time())

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        wall, cpu = self._step_started
        self.in_steps += time.perf_counter() - wall
        self.cpu_in_steps += time.process_time() - cpu

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.evaluation += (metrics or {}).get("eval_runtime", 0.0)

    def on_train_end(self, args, state, control, **kwargs):
        wall, cpu = self._started
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu

    def row(self) -> dict:
        """Seconds: training wall and CPU time, wall and CPU time in optimizer steps, in evaluation, the rest."""
        return {
            "train_wall_s": self.wall,
            "train_cpu_s": self.cpu,
            "in_steps_s": self.in_steps,
            "cpu_in_steps_s": self.cpu_in_steps,
            "evaluation_s": self.evaluation,
            "other_s": self.wall - self.in_steps - self.evaluation,
        }
