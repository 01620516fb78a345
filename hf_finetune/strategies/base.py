"""The protocol every strategy follows.

A strategy speaks of *blocks* (`embeddings`, `block.0` ... `block.{n-1}`, `head`; see
`hf_finetune.modeling.layers`), never of module names, so one file works for BERT and ViT alike.
Its hooks are small and composable; `hf_finetune.strategies.plan.TransferPlan` multiplies what
several strategies say about each block, so `freeze_bottom + llrd` needs no special code:
a frozen block has factor 0 whatever the decay gives it.
"""

from __future__ import annotations

from typing import ClassVar

from hf_finetune.settings.search_space import learning_rate_range


class Strategy:
    """Hooks a strategy may override; the defaults change nothing."""

    name: ClassVar[str]
    summary: ClassVar[str]
    # Dataclass holding this strategy's prefixed config fields (`freeze_num_layers`), or None.
    # `hf_finetune.recipes` collects them, so a new strategy with options is still one file.
    Arguments: ClassVar[type | None] = None
    # Strategies that decide *what* trains (every weight, only the head, adapters...): a run has one.
    decides_what_trains: ClassVar[bool] = False
    # Learning rate used when the user sets none (a linear probe wants ~50x full fine-tuning's).
    default_learning_rate: ClassVar[float | None] = None
    # Strategies that speak of each layer's depth (freeze the bottom k, decay per layer, open layer by
    # layer): they refuse a model whose layer layout cannot be read; the others never ask for it.
    needs_depth: ClassVar[bool] = False
    # Strategies that train only the task head need one (a bare base model has none).
    needs_head: ClassVar[bool] = False
    # Names of strategies this one cannot be combined with -> why (checked in both directions).
    refuses: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg):
        self.cfg = cfg
        self.args = cfg.strategy_options(self.Arguments) if self.Arguments else None

    @classmethod
    def search_space(cls, num_blocks: int, learning_rate: float | None = None) -> dict:
        """What `hf-finetune tune` searches for this strategy, by recipe key (`settings.search_space` shapes).

        A strategy that decides what trains owns the learning rate: a log range around `learning_rate`
        (the recipe's, when the recipe was tuned for this strategy) or its own default. Strategies with
        options add theirs; `num_blocks` bounds options counted in blocks."""
        centre = learning_rate or cls.default_learning_rate
        return {"learning_rate": learning_rate_range(centre)} if cls.decides_what_trains and centre else {}

    def check(self, layout) -> None:
        """Validate options against the discovered layout (e.g. k <= number of blocks); raise UserError."""

    def prepare_model(self, model, new_keys: list[str]):
        """Replace, re-initialise or wrap the model (PEFT) before its blocks are discovered; return it."""
        return model

    def lr_factor(self, layout, block: str) -> float:
        """Static LR factor for a block, multiplied into the group's stored LR; 0 freezes it for the run."""
        return 1.0

    def is_scheduled(self) -> bool:
        """Whether `open_at_step` varies over training (then frozen blocks stay in the optimizer)."""
        return False

    def open_at_step(self, layout, block: str, step: int, steps_per_epoch: float) -> bool:
        """Whether a block trains at this optimizer step (gradual unfreezing); multiplies the LR by 0 or 1."""
        return True

    def setup(self, model, layout, new_keys: list[str]) -> None:
        """Called once the layout is known and before training (e.g. snapshot pretrained weights)."""

    def extra_loss(self):
        """A regulariser added to the task loss each step (a scalar tensor), or None."""
        return None

    def callbacks(self) -> list:
        """`transformers.TrainerCallback`s the strategy needs."""
        return []

    def before_training(self, model, task, data, processor) -> None:
        """Called once the data are encoded, before the output folder exists: may set weights from the training
        data (the convex linear probe fits the head here, `hf_finetune.probe_head`)."""

    def needs_training(self) -> bool:
        """Whether the run needs the Trainer's loop at all (False: `before_training` already fitted the model)."""
        return True

    def extend_data(self, task, data, processor, encoded: dict) -> dict:
        """Called once the splits are encoded, before the output folder exists: may replace `encoded["train"]`
        (dann mixes in unlabelled target-domain rows) and returns extra labelled evaluation sets
        {name: encoded dataset}, scored each epoch beside validation (`eval_<name>_*`) and after training."""
        return {}
