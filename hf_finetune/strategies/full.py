from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@register_strategy
class FullFineTuning(Strategy):
    """Every weight trains. Pretrained weights want a learning rate ~10x below the from-scratch
    one (2e-5..5e-5 for BERT-size encoders, Devlin et al. 2019), which is our default."""

    name = "full"
    summary = "train every weight; default LR 2e-5, ~10x below from-scratch training"
    decides_what_trains = True
    default_learning_rate = 2e-5
