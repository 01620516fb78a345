"""An exponential moving average (EMA) of the weights, kept beside the Trainer's model.

The averaging is torch's `AveragedModel` (a copy of the model and a counter); we supply the decay rule and
tie it into the run: updated after every optimizer step, swapped into the model for every evaluation (so
best-checkpoint selection compares averaged weights), saved as `ema.safetensors` in every checkpoint before
its completion sentinel (so a resumed run continues the same average, bit for bit), and copied into the
model at the end (the best checkpoint's average when `load_best_model_at_end`), so the saved model is the EMA.

Decay rule at update t (t = 1 after the first optimizer step; t = 0 is a copy of the starting weights):
    d_t = min(decay, (1 + t) / (10 + t)) with warm-up, else d_t = decay;  ema_t = d_t ema_{t-1} + (1 - d_t) w_t
The warm-up is TensorFlow's `ExponentialMovingAverage(num_updates=...)` rule: with 160 steps (the Fashion-MNIST
target recipe) and decay 0.999 an un-warmed average would still hold 85% of the starting weights at the end.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch.optim.swa_utils import AveragedModel
from transformers import TrainerCallback

EMA_FILE = "ema.safetensors"


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


class WeightEma(TrainerCallback):
    """The EMA of a model's parameters and buffers, and the Trainer events that keep it."""

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)
        self.averaged.update_parameters(model)  # the first update copies: the average starts at the start
        self.final = False  # once the model holds the EMA weights for good, evaluation swaps nothing

    def _average(self, averaged: list, current: list, num_averaged) -> None:
        # `num_averaged` counts updates before this one (1 after the initial copy): this is update t.
        decay = ema_decay_at(int(num_averaged), self.decay, self.warmup)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:  # ema + (1 - d)(w - ema) = d ema + (1 - d) w
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - decay)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():  # integer buffers (position ids, batch counts) are copied, not averaged
                a.copy_(c)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.averaged.update_parameters(model)

    def _tensors(self, module) -> list[torch.Tensor]:
        return [*module.parameters(), *module.buffers()]

    @contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """The model holds the EMA weights inside the block, its own weights again after it."""
        if self.final:
            yield
            return
        live = self._tensors(model)
        saved = [t.detach().clone() for t in live]
        with torch.no_grad():
            torch._foreach_copy_(live, self._tensors(self.averaged.module))
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(live, saved)

    def save(self, folder: Path) -> None:
        save_model(self.averaged, str(Path(folder) / EMA_FILE))

    def load(self, folder: Path) -> bool:
        path = Path(folder) / EMA_FILE
        if path.is_file():
            load_model(self.averaged, str(path))
        return path.is_file()

    def use_for_model(self, model: torch.nn.Module, best_checkpoint: str | None) -> None:
        """Copy the EMA into the model for good: the best checkpoint's average when one was reloaded."""
        if best_checkpoint:
            self.load(Path(best_checkpoint))
        with torch.no_grad():
            torch._foreach_copy_(self._tensors(model), self._tensors(self.averaged.module))
        self.final = True
