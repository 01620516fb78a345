from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.modeling.probe_head import PROBE_TASKS, fit_convex_head
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy

_BACKBONE_FROZEN = "the backbone is already frozen by linear_probe"
SOLVERS = ("auto", "lbfgs", "sgd")


@dataclass
class LinearProbeArguments:
    _argument_group_name = "linear_probe strategy"

    linear_probe_solver: str = field(
        default="auto",
        metadata={
            "help": "How the head is fitted. `lbfgs`: L-BFGS logistic regression on the frozen head inputs, C by "
            "cross-validation on train, written into the head; no optimizer steps (a convex problem: it converges "
            "where SGD at a fine-tuning schedule stalls on small data). `sgd`: the Trainer trains the head "
            "(learning_rate, epochs). `auto` (default): lbfgs for single-label text/image classification, else sgd.",
            "choices": list(SOLVERS),
        },
    )
    linear_probe_cv_folds: int = field(
        default=5, metadata={"help": "Stratified folds that choose the L-BFGS probe's C (fewer if a class is smaller)."}
    )


def uses_lbfgs(solver: str, cfg) -> bool:
    if solver not in SOLVERS:
        raise UserError(f"linear_probe_solver must be one of {', '.join(SOLVERS)}, got '{solver}'")
    if solver == "auto":
        return cfg.run.task in PROBE_TASKS and not cfg.data.multi_label
    return solver == "lbfgs"


@register_strategy
class LinearProbe(Strategy):
    """Feature extraction: the pretrained network is frozen and only the new head learns. The
    cheapest strategy and the honest measure of how good the pretrained features are. By default
    the head is fitted as the convex problem it is (L-BFGS logistic regression, `hf_finetune.probe_head`);
    `linear_probe_solver: sgd` trains it with the Trainer instead, at a large LR."""

    name = "linear_probe"
    summary = "freeze the backbone, fit only the new head (L-BFGS logistic regression, C by CV; or sgd at LR 1e-3)"
    Arguments = LinearProbeArguments
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

    def __init__(self, cfg):
        super().__init__(cfg)
        self.lbfgs = uses_lbfgs(self.args.linear_probe_solver, cfg)
        if self.args.linear_probe_cv_folds < 2:
            raise UserError(f"linear_probe_cv_folds must be at least 2, got {self.args.linear_probe_cv_folds}")
        self.layout = self.fit = None

    def lr_factor(self, layout, block):
        return 1.0 if block == HEAD else 0.0

    def setup(self, model, layout, new_keys):
        self.layout = layout

    def before_training(self, model, task, data, processor):
        if self.lbfgs:
            self.fit = fit_convex_head(model, self.layout, task, data, processor, self.cfg,
                                       self.args.linear_probe_cv_folds)  # fmt: skip
            data.extra_outputs["linear_probe.json"] = self.fit.to_json()

    def needs_training(self):
        return not self.lbfgs
