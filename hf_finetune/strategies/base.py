"""The protocol every strategy follows."""

from __future__ import annotations

from typing import ClassVar


class Strategy:
    """Hooks a strategy may override; the defaults change nothing."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, cfg):
        self.cfg = cfg

    def prepare_model(self, model):
        """Freeze, wrap or re-initialise parts of the model before training; return the model."""
        return model

    def callbacks(self) -> list:
        """`transformers.TrainerCallback`s the strategy needs (schedules, logging)."""
        return []
