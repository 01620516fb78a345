from hf_finetune.modeling.layers import HEAD
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy

_BACKBONE_FROZEN = "the backbone is already frozen by linear_probe"


@register_strategy
class LinearProbe(Strategy):
    """Feature extraction: the pretrained network is frozen and only the new head learns. The
    cheapest strategy and the honest measure of how good the pretrained features are; a fresh
    head on fixed features tolerates (and needs) a much larger LR than fine-tuning."""

    name = "linear_probe"
    summary = "freeze the backbone, train only the new head (feature extraction); default LR 1e-3"
    decides_what_trains = True
    needs_head = True
    default_learning_rate = 1e-3
    refuses = {
        "freeze_bottom": _BACKBONE_FROZEN,
        "gradual_unfreeze": "gradual_unfreeze would unfreeze the backbone that linear_probe keeps frozen; "
        "use gradual_unfreeze alone (it starts as a linear probe)",
        "llrd": "layer-wise decay needs trained layers, and linear_probe trains only the head",
        "l2sp": "l2sp regularises trained backbone weights; " + _BACKBONE_FROZEN + " (use weight_decay for the head)",
    }

    def lr_factor(self, layout, block):
        return 1.0 if block == HEAD else 0.0
