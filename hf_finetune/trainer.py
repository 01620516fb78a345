"""`transformers.Trainer` with three hooks handed to the transfer plan, a task loss, and a divergence stop.

The loop, mixed precision, DDP/FSDP, checkpointing and logging stay the Trainer's; only
the optimizer's param groups (one per block, final LR stored in each), the LR schedule
(gated by gradual unfreezing) and an extra loss term (L2-SP) come from the strategies,
and the task may replace the model's own loss (class-weighted cross-entropy).
A non-finite training loss ends the run (exit code 3): Trainer would log it as 0
(`logging_nan_inf_filter`) and train on with NaN weights to the last epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, has_length

from .errors import TrainingDiverged
from .transfer import TransferPlan


class StrategyTrainer(Trainer):
    def __init__(self, *args, plan: TransferPlan, loss_function=None, **kwargs):
        self.plan = plan
        # `(logits, labels) -> loss`, a batch mean like the model's own; used for training and evaluation.
        # Not Trainer's `compute_loss_func`: Trainer treats that one as already normalised over the
        # accumulated batch and scales it by the process count.
        self.loss_function = loss_function
        super().__init__(*args, **kwargs)
        # Trainer treats a model whose forward takes **kwargs as one that divides its summed loss by
        # the global `num_items_in_batch`, and multiplies the loss by the number of processes to undo
        # DDP's gradient average. transformers 5.x classification models take **kwargs but some
        # (BERT) return a plain batch mean, so under DDP the loss, its gradient and the logged and
        # evaluation losses came out 2x with 2 processes (measured). One item per example makes the
        # batch mean (divided by accumulation steps, averaged by DDP) the exact global mean anyway.
        self.model_accepts_loss_kwargs = False

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5.x groups evaluation batches by length too when `train_sampling_strategy` is
        # `group_by_length` (our default), so `predict` returned predictions in a shuffled order: the
        # scores were right (labels travel with them) but the misclassified file paired each text with
        # another text's prediction. Evaluation keeps the dataset's order; one process reads it
        # sequentially, several get accelerate's ordered shards (the base class's None).
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

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

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        diverged = (~torch.isfinite(loss)).to(torch.int32).reshape(1)
        if self.args.world_size > 1:
            # Every process stops at the same step: one process leaving alone would hang the others
            # in their next all-reduce.
            diverged = self.accelerator.reduce(diverged, reduction="sum")
        if diverged.item():
            raise TrainingDiverged(self.divergence_message(float(loss)))
        return loss

    def divergence_message(self, loss: float) -> str:
        value = loss if not math.isfinite(loss) else "non-finite on another process"
        step = self.state.global_step + 1  # the optimizer step this batch belongs to
        saved = sorted(
            Path(self.args.output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"), key=lambda p: int(p.name.split("-")[-1])
        )
        where = (
            f"the newest checkpoint saved before it is {saved[-1]} (--resume_from_checkpoint {saved[-1]})"
            if saved
            else "no checkpoint was saved before it"
        )
        return (
            f"training diverged: the loss became {value} at step {step} (epoch {self.state.epoch or 0:.2f}); "
            f"{where}. Lower --learning_rate (now {self.args.learning_rate:g}), keep --max_grad_norm on, "
            "or use bf16 rather than fp16"
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_function is not None and "labels" in inputs:
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = self.loss_function(outputs["logits"], labels)
            result = (loss, outputs) if return_outputs else loss
        else:
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
