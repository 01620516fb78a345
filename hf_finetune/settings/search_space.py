"""The shapes of a hyper-parameter search space, declared by the code that owns each knob.

A strategy declares the ranges of its own options (`Strategy.search_space`), the tuner adds the
common ones (epochs, batch size, warm-up, weight decay); a recipe's `tune_space:` narrows or
replaces them. These are plain descriptions: `hf_finetune.analysis.tuning` turns them into
Optuna suggestions, so the plug-ins need no Optuna import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hf_finetune.errors import UserError

# A learning-rate range spans this factor either side of its centre (default or recipe rate):
# 5x each way (25x in all) covers the spread of published rates for one model family and strategy.
LR_SPREAD = 5.0


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def grid(self) -> list[float]:
        """Three points (ends and middle, geometric on a log scale) for the grid sampler."""
        middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        return sorted({self.low, middle, self.high})

    def describe(self) -> str:
        return f"{self.low:g} .. {self.high:g}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def grid(self) -> list[int]:
        return sorted({self.low, (self.low + self.high) // 2, self.high})

    def describe(self) -> str:
        return f"{self.low} .. {self.high} (integers{', log' if self.log else ''})"


@dataclass(frozen=True)
class Choice:
    choices: tuple

    def grid(self) -> list:
        return list(self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)


def learning_rate_range(centre: float) -> FloatRange:
    return FloatRange(centre / LR_SPREAD, centre * LR_SPREAD, log=True)


def parse_range(name: str, spec: Any) -> FloatRange | IntRange | Choice:
    """One `tune_space:` entry: a list (choices), `{low, high[, log]}` (a range; integers if both ends are),
    or a single value (fixed). Errors name the key and say what a valid entry looks like."""
    if isinstance(spec, list | tuple):
        if not spec:
            raise UserError(f"tune_space: {name} has an empty list of choices; give at least one value")
        return Choice(tuple(spec))
    if not isinstance(spec, dict):
        return Choice((spec,))
    unknown = sorted(set(spec) - {"low", "high", "log"})
    if unknown or not {"low", "high"} <= set(spec):
        raise UserError(
            f"tune_space: {name} must be a list of choices or {{low: L, high: H, log: true|false}}, got {spec}"
        )
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    try:
        low, high = (v if isinstance(v, int) and not isinstance(v, bool) else float(v) for v in (low, high))
    except (TypeError, ValueError):
        raise UserError(f"tune_space: {name} needs numbers for low and high, got {spec}") from None
    if not low <= high:
        raise UserError(f"tune_space: {name} is an empty range (low {low:g} > high {high:g}); swap or widen it")
    if log and low <= 0:
        raise UserError(f"tune_space: {name} has log: true, so low must be positive, got {low:g}")
    if isinstance(low, int) and isinstance(high, int):
        return IntRange(low, high, log)
    return FloatRange(float(low), float(high), log)
