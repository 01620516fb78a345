"""`transformers.Trainer` with three hooks handed to the transfer plan, and nothing else.

The loop, mixed precision, DDP/FSDP, checkpointing and logging stay the Trainer's; only
the optimizer's param groups (one per block, final LR stored in each), the LR schedule
(gated by gradual unfreezing) and an extra loss term (L2-SP) come from the strategies.
"""

from __future__ import annotations

import math

from transformers import Trainer

from .transfer import TransferPlan


class StrategyTrainer(Trainer):
    def __init__(self, *args, plan: TransferPlan, **kwargs):
        self.plan = plan
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            decay_names = set(self.get_decay_parameter_names(opt_model))
            decay_ids = {id(p) for name, p in opt_model.named_parameters() if name in decay_names}
            groups = self.plan.param_groups(self.args.learning_rate, self.args.weight_decay, decay_ids)
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if created and self.plan.scheduled:
            self.lr_scheduler = self.plan.gate_scheduler(scheduler, self.steps_per_epoch())
        return self.lr_scheduler

    def steps_per_epoch(self) -> float:
        """Optimizer steps per epoch, as the Trainer counts them: batches per process / accumulation."""
        args = self.args
        per_process = math.ceil(len(self.train_dataset) / args.world_size)
        return max(math.ceil(per_process / args.per_device_train_batch_size) // args.gradient_accumulation_steps, 1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        # Only while training: evaluation loss stays the task loss, comparable across strategies.
        penalty = self.plan.extra_loss() if model.training else None
        if penalty is None:
            return result
        if return_outputs:
            loss, outputs = result
            return loss + penalty, outputs
        return result + penalty
