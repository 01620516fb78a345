from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy

_NOTHING_PRETRAINED = "scratch has no pretrained weights to {}"


@register_strategy
class Scratch(Strategy):
    """Same architecture and tokenizer/image processor, random weights: the baseline that shows
    what pre-training is worth on this data. Trained at 10x full fine-tuning's LR, the usual
    from-scratch rate for encoders of this size."""

    name = "scratch"
    summary = "same architecture, random init: the no-transfer baseline; default LR 2e-4"
    decides_what_trains = True
    default_learning_rate = 2e-4
    refuses = {
        "freeze_bottom": _NOTHING_PRETRAINED.format("keep frozen"),
        "gradual_unfreeze": _NOTHING_PRETRAINED.format("protect by unfreezing gradually"),
        "llrd": _NOTHING_PRETRAINED.format("protect with smaller lower-layer LRs"),
        "l2sp": _NOTHING_PRETRAINED.format("pull toward"),
    }

    def prepare_model(self, model, new_keys):
        # The class's own __init__ runs its `_init_weights`: the same init pre-training started from.
        fresh = type(model)(model.config)
        fresh.config.name_or_path = model.config.name_or_path
        return fresh
