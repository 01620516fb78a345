from hf_finetune.modeling.adapters import PEFT_REFUSES, wrap_with_peft
from hf_finetune.modeling.layers import discover_blocks, ia3_modules
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@register_strategy
class IA3(Strategy):
    """(IA)^3 (Liu et al. 2022): learned vectors that rescale the attention keys and values and
    the input of each block's feed-forward down-projection; ~0.1% of the parameters, fewer than
    LoRA. The head trains fully. Targets are found from structure, not names (see
    `hf_finetune.modeling.layers.ia3_modules`), so it works for BERT and ViT alike."""

    name = "ia3"
    summary = "(IA)^3 scaling vectors on keys, values and feed-forward layers, head trained fully; default LR 3e-3"
    decides_what_trains = True
    default_learning_rate = 3e-3  # T-Few's rate; the vectors start at 1 and need large steps
    refuses = PEFT_REFUSES

    def prepare_model(self, model, new_keys):
        from peft import IA3Config

        targets, feedforward = ia3_modules(model, discover_blocks(model))
        config = IA3Config(target_modules=targets, feedforward_modules=feedforward)
        return wrap_with_peft(model, config, self.cfg)
