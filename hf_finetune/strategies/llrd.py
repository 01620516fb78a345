from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class LlrdArguments:
    _argument_group_name = "llrd strategy"

    llrd_decay: float = field(
        default=0.9,
        metadata={
            "help": "Each block down from the top trains at this factor times the LR of the block above "
            "(top block: LR x decay, embeddings: LR x decay^(n+1)); 0.65-0.95 is typical (Clark et al. 2020)."
        },
    )
    llrd_head_lr_multiplier: float = field(
        default=1.0, metadata={"help": "The new head's LR is the base LR times this (e.g. 10 for a fresh head)."}
    )


@register_strategy
class LayerwiseLrDecay(Strategy):
    """Layer-wise learning-rate decay (Howard & Ruder 2018; ELECTRA, BEiT): lower blocks hold more
    general features and move less. The decayed LR is stored in each param group, so every
    HF scheduler scales it correctly."""

    name = "llrd"
    needs_depth = True
    summary = "layer-wise LR decay: LR x llrd_decay per block down from the top; separate head LR multiplier"
    Arguments = LlrdArguments

    def check(self, layout):
        if not 0 < self.args.llrd_decay <= 1:
            raise UserError(f"llrd_decay must be in (0, 1], got {self.args.llrd_decay}")
        if self.args.llrd_head_lr_multiplier <= 0:
            raise UserError(f"llrd_head_lr_multiplier must be positive, got {self.args.llrd_head_lr_multiplier}")

    def lr_factor(self, layout, block):
        if block == HEAD:
            return self.args.llrd_head_lr_multiplier
        return self.args.llrd_decay ** (layout.num_blocks + 1 - layout.depth_index(block))
