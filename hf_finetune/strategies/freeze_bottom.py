from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import EMBEDDINGS
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class FreezeBottomArguments:
    _argument_group_name = "freeze_bottom strategy"

    freeze_num_layers: int = field(
        default=0,
        metadata={
            "help": "How many transformer blocks, counted from the input, stay frozen together with the "
            "embeddings (0 freezes only the embeddings). Lower layers hold the most general features "
            "(Yosinski et al. 2014), so they gain least from tuning."
        },
    )


@register_strategy
class FreezeBottom(Strategy):
    """Freeze the embeddings and the first k blocks, train the rest: cheaper than full
    fine-tuning and safer on small data sets, as the bottom layers transfer best."""

    name = "freeze_bottom"
    needs_depth = True
    summary = "freeze embeddings + the first freeze_num_layers blocks, train the rest"
    Arguments = FreezeBottomArguments

    def check(self, layout):
        k = self.args.freeze_num_layers
        if not 0 <= k <= layout.num_blocks:
            raise UserError(
                f"freeze_num_layers must be between 0 and {layout.num_blocks} (this model has "
                f"{layout.num_blocks} blocks), got {k}"
            )

    def lr_factor(self, layout, block):
        frozen = {EMBEDDINGS, *(f"block.{i}" for i in range(self.args.freeze_num_layers))}
        return 0.0 if block in frozen else 1.0
