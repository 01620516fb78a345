from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class L2spArguments:
    _argument_group_name = "l2sp strategy"

    l2sp_alpha: float = field(
        default=0.01,
        metadata={
            "help": "Strength of the pull toward the pretrained weights: alpha/2 * sum ||w - w0||^2 "
            "(Li et al. 2018, https://arxiv.org/abs/1802.01483, used 0.1 with SGD)."
        },
    )
    l2sp_beta: float = field(
        default=0.01,
        metadata={"help": "Plain L2 on weights with no pretrained value (the new head): beta/2 * ||w||^2."},
    )


@register_strategy
class L2SP(Strategy):
    """L2-SP (Li, Grandvalet & Davoine 2018): weight decay toward the *starting point* rather than
    toward zero, so fine-tuning can adapt but is pulled back to what pre-training learned; it helps
    most on small target sets. Weights with no pretrained value (the head, any newly initialised
    weight) get ordinary L2 with `l2sp_beta`. Set `weight_decay: 0` with it: decay toward zero
    works against the pull toward w0."""

    name = "l2sp"
    summary = "add alpha/2*||w - w_pretrained||^2 over the backbone + beta/2*||w_head||^2 to the loss"
    Arguments = L2spArguments

    def check(self, layout):
        if self.args.l2sp_alpha < 0 or self.args.l2sp_beta < 0:
            raise UserError("l2sp_alpha and l2sp_beta must not be negative")

    def setup(self, model, layout, new_keys):
        new = set(new_keys)
        self.pretrained, self.fresh = [], []
        for block in layout.names:
            for name, param in layout.params[block]:
                if not param.requires_grad:
                    continue
                if block == HEAD or name in new:
                    self.fresh.append(param)
                else:
                    self.pretrained.append((param, param.detach().clone()))  # the starting point, outside autograd

    def extra_loss(self):
        """alpha/2 * sum ||w - w0||^2 + beta/2 * sum ||w_fresh||^2, as a scalar tensor."""
        import torch

        zero = torch.zeros(())
        drift = sum(((w - w0).pow(2).sum() for w, w0 in self.pretrained), zero)
        size = sum((w.pow(2).sum() for w in self.fresh), zero)
        return 0.5 * self.args.l2sp_alpha * drift + 0.5 * self.args.l2sp_beta * size
