from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.probe_head import check_probe_task, fit_convex_head
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class LpFtArguments:
    _argument_group_name = "lp_ft strategy"

    lp_ft_cv_folds: int = field(
        default=5, metadata={"help": "Stratified folds that choose the probe's C before fine-tuning starts."}
    )


@register_strategy
class LinearProbeThenFineTune(Strategy):
    """LP-FT (Kumar et al., ICLR 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
    Out-of-Distribution", https://arxiv.org/abs/2202.10054): fit the head first on the frozen features
    (the convex L-BFGS probe of `linear_probe`), then fine-tune every weight at a fine-tuning rate. A random
    head's large early gradients are what distort the pretrained features; a fitted head starts near the optimum."""

    name = "lp_ft"
    summary = "fit the head by the convex linear probe, then fine-tune everything; default LR 2e-5"
    Arguments = LpFtArguments
    decides_what_trains = True
    default_learning_rate = 2e-5

    def __init__(self, cfg):
        super().__init__(cfg)
        check_probe_task(cfg)
        if self.args.lp_ft_cv_folds < 2:
            raise UserError(f"lp_ft_cv_folds must be at least 2, got {self.args.lp_ft_cv_folds}")
        self.layout = self.fit = None

    def setup(self, model, layout, new_keys):
        self.layout = layout

    def before_training(self, model, task, data, processor):
        self.fit = fit_convex_head(model, self.layout, task, data, processor, self.cfg, self.args.lp_ft_cv_folds)
        data.extra_outputs["linear_probe.json"] = self.fit.to_json()
