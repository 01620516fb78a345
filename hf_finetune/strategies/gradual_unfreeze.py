from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class GradualUnfreezeArguments:
    _argument_group_name = "gradual_unfreeze strategy"

    gradual_unfreeze_every_epochs: float = field(
        default=1.0,
        metadata={"help": "Unfreeze the next group of blocks (top-down) after this many epochs (ULMFiT: 1)."},
    )
    gradual_unfreeze_every_steps: int | None = field(
        default=None, metadata={"help": "Unfreeze every N optimizer steps instead; wins over the epoch setting."}
    )
    gradual_unfreeze_blocks_per_stage: int = field(
        default=1, metadata={"help": "How many blocks open at each stage (the embeddings count as the lowest)."}
    )


@register_strategy
class GradualUnfreeze(Strategy):
    """ULMFiT's gradual unfreezing (Howard & Ruder 2018): train the head first, then open one
    block group per stage from the top down, so the random head does not wreck the pretrained
    lower layers with large early gradients. Blocks open by raising their LR from 0, which keeps
    every parameter registered with DDP (see `hf_finetune.strategies.plan`)."""

    name = "gradual_unfreeze"
    needs_depth = True
    summary = "train the head first, then unfreeze one block group per epoch (or N steps) from the top"
    Arguments = GradualUnfreezeArguments

    def check(self, layout):
        if self.args.gradual_unfreeze_blocks_per_stage < 1:
            raise UserError("gradual_unfreeze_blocks_per_stage must be at least 1")
        every = self.args.gradual_unfreeze_every_steps
        if (every is not None and every < 1) or (every is None and self.args.gradual_unfreeze_every_epochs <= 0):
            raise UserError("gradual_unfreeze_every_steps / _every_epochs must be positive")

    def is_scheduled(self):
        return True

    def stage_of(self, layout, block: str) -> int:
        """0 for the head (trains from the start), 1 for the group of blocks opened first, ..."""
        if block == HEAD:
            return 0
        from_top = layout.num_blocks - layout.depth_index(block)  # top block 0, embeddings num_blocks
        return 1 + from_top // self.args.gradual_unfreeze_blocks_per_stage

    def open_at_step(self, layout, block, step, steps_per_epoch):
        every = self.args.gradual_unfreeze_every_steps or self.args.gradual_unfreeze_every_epochs * steps_per_epoch
        return step >= self.stage_of(layout, block) * every
