"""`transformers.Trainer` with three hooks handed to the transfer plan, a task loss, and two safe stops.

The loop, mixed precision, DDP/FSDP, checkpointing and logging stay the Trainer's; only
the optimizer's param groups (one per block, final LR stored in each), the LR schedule
(gated by gradual unfreezing) and an extra loss term (L2-SP) come from the strategies,
and the task may replace the model's own loss (class-weighted, label-smoothed or soft-target cross-entropy)
and transform each training batch (image augmentation and mixup on the collated batch). With `ema_decay`,
an EMA of the weights (`engine.ema`) is what evaluation sees, what each checkpoint carries beside the
weights, and what the model becomes at the end (`use_ema_weights`).
With `auto_batch_size`, an out-of-memory error retries with a smaller per-device batch and more
accumulation steps (`keep_effective_batch`). A non-finite training loss ends the run (exit code 3): Trainer would log it as 0
(`logging_nan_inf_filter`) and train on with NaN weights to the last epoch. A SIGTERM or
Ctrl-C (`hf_finetune.engine.interruption`) ends it after the current step with a checkpoint saved.
Both are agreed across processes in one small all-reduce per step, so under DDP every
process stops at the same step. On CPUs, training steps draw dropout masks the cheaper way
(`modeling.dropout`, `fast_dropout`) and evaluations run the checkpoint's own attention kernel
(`modeling.attention.prediction_attention`) when training switched it.
"""

from __future__ import annotations

import logging
import math
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, has_length, rotate_checkpoints

from hf_finetune.engine.checkpoints import (
    load_adapter_in_place,
    load_renamed_weights,
    mark_checkpoint_complete,
    newest_complete,
)
from hf_finetune.engine.ema import WeightEma
from hf_finetune.engine.interruption import StopOnSignal
from hf_finetune.errors import CheckpointNotSaved, TrainingDiverged, first_line
from hf_finetune.modeling.attention import prediction_attention
from hf_finetune.modeling.dropout import cpu_fast_dropout

logger = logging.getLogger("hf_finetune")


# Examples sorted together into batches of similar length: 50 batches' worth, the most Trainer uses.
MEGA_BATCHES = 50


def length_grouped_indices(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """A random order in which each run of `batch_size` indices has similar lengths.

    Shuffled, cut into mega-batches of `MEGA_BATCHES` batches, each sorted by length and cut into
    batches; then the batches are shuffled, the longest first (an out-of-memory error shows at the
    first step) and a short last batch last (so the DataLoader's batches are exactly these).
    Trainer's own grouping sorts mega-batches of only `len // (4 x batch)` batches (12 for 1,600
    fortunes at batch 32), which left 30-50% of the positions padding on fortunes' long tail of
    lengths; 50 batches leave a few percent.
    """
    indices = torch.randperm(len(lengths), generator=generator).tolist()
    size = MEGA_BATCHES * batch_size
    batches = []
    for start in range(0, len(indices), size):
        mega = sorted(indices[start : start + size], key=lambda i: -lengths[i])
        batches += [mega[i : i + batch_size] for i in range(0, len(mega), batch_size)]
    short = batches.pop() if len(batches[-1]) < batch_size else None
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    if batches:
        longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]])
        batches[0], batches[longest] = batches[longest], batches[0]
    return [i for batch in batches + ([short] if short else []) for i in batch]


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches (`length_grouped_indices`) in an order fixed by (seed, epoch), like
    accelerate's SeedableRandomSampler.

    Trainer's LengthGroupedSampler draws each epoch's order from the global RNG, whose state at
    the start of epoch 2 depends on all of epoch 1's dropout: a run resumed in epoch 2 or later got
    other batches than the run it continues (measured: its loss split at the first resumed step).
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from length_grouped_indices(self.lengths, self.batch_size, generator)
        self.epoch += 1


def keep_effective_batch(per_device: int, accumulation: int, proposed: int, failed: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) for a retry after `failed` ran out of memory.

    Trainer's search proposes ~0.9x the last size; we take the largest divisor of the effective
    per-process batch (`per_device x accumulation`) that is at most the proposal and below the size
    that failed, so per-device x accumulation x processes, what the learning rate was tuned for, is
    unchanged: 32 x 1 becomes 16 x 2, then 8 x 4. Raises the out-of-memory story when even 1 fails.
    """
    total = per_device * accumulation
    smaller = [d for d in range(min(proposed, failed - 1, total), 0, -1) if total % d == 0]
    if not smaller:
        raise RuntimeError("out of memory even with a per-device batch of 1 (auto_batch_size found no size that fits)")
    return smaller[0], total // smaller[0]


def text_lengths(dataset) -> list[int] | None:
    """Token counts of an encoded text split (None for images and other inputs)."""
    if "input_ids" not in getattr(dataset, "column_names", ()):
        return None
    return [len(ids) for ids in dataset.with_format(None)["input_ids"]]


def nested_reorder(values, order):
    """`values[order]` for an array, or for each array of a (nested) tuple of model outputs."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(nested_reorder(v, order) for v in values)
    return values[order]


class StrategyTrainer(Trainer):
    def __init__(self, *args, plan, loss_function=None, batch_transform=None, **kwargs):
        # `plan`: the run's `strategies.plan.TransferPlan`. The engine sits below the plug-ins and takes
        # the plan it is given (param groups, gated schedule, extra loss) without importing them.
        self.plan = plan
        self.stop_on_signal = StopOnSignal()
        # `(logits, labels) -> loss`, a batch mean like the model's own; used for training and evaluation.
        # Not Trainer's `compute_loss_func`: Trainer treats that one as already normalised over the
        # accumulated batch and scales it by the process count.
        self.loss_function = loss_function
        self.eval_orders: dict[int, tuple] = {}  # id(eval dataset) -> (dataset, longest-first order)
        # `inputs -> inputs` for training batches only (random augmentation, mixup: `data.batch_augment`).
        self.batch_transform = batch_transform
        super().__init__(*args, **kwargs)
        self.add_callback(self.stop_on_signal)
        # The weights' moving average (`engine.ema`): evaluated, checkpointed and saved in the model's place.
        decay = getattr(self.args, "ema_decay", 0.0)  # a FinetuneTrainingArguments field; plain args have none
        self.ema = WeightEma(self.model, decay, getattr(self.args, "ema_warmup", True)) if decay else None
        if self.ema is not None:
            self.add_callback(self.ema)
        # Trainer treats a model whose forward takes **kwargs as one that divides its summed loss by
        # the global `num_items_in_batch`, and multiplies the loss by the number of processes to undo
        # DDP's gradient average. transformers 5.x classification models take **kwargs but some
        # (BERT) return a plain batch mean, so under DDP the loss, its gradient and the logged and
        # evaluation losses came out 2x with 2 processes (measured). One item per example makes the
        # batch mean (divided by accumulation steps, averaged by DDP) the exact global mean anyway.
        self.model_accepts_loss_kwargs = False
        # What the user asked for; `auto_batch_size` retries keep their product (`keep_effective_batch`).
        self.requested_batch = (self.args.per_device_train_batch_size, self.args.gradient_accumulation_steps)
        self.attempted_batch: int | None = None

    def _update_auto_batch_size(self, batch_size):
        """Trainer's `auto_find_batch_size` hook, called before each attempt: keep the effective batch."""
        per_device, accumulation = self.requested_batch
        if self.attempted_batch is not None:  # a retry: the last attempt ran out of memory
            per_device, accumulation = keep_effective_batch(*self.requested_batch, batch_size, self.attempted_batch)
            logger.warning(
                "out of memory at a per-device batch of %d; retrying with %d x %d accumulation steps (the "
                "effective batch stays %d per process)",
                self.attempted_batch,
                per_device,
                accumulation,
                per_device * accumulation,
            )
        elif batch_size != per_device:  # resumed: Trainer restored the size a previous search found
            per_device, accumulation = batch_size, per_device * accumulation // batch_size
        self.args.gradient_accumulation_steps = accumulation
        self.attempted_batch = per_device
        super()._update_auto_batch_size(per_device)

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            sampler = SeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5.x groups evaluation batches by length too when `train_sampling_strategy` is
        # `group_by_length` (our default), so `predict` returned predictions in a shuffled order: the
        # scores were right (labels travel with them) but the misclassified file paired each text with
        # another text's prediction. Evaluation returns the dataset's order. One process reads texts
        # longest first (batches of similar length pad less: 220 fortunes validation texts, batch 64,
        # padding 64% -> 28% of positions, 2.2x less CPU time) and `evaluation_loop` puts the
        # predictions back in order; several processes get accelerate's ordered shards (base class).
        if eval_dataset is None or not has_length(eval_dataset) or self.args.world_size > 1:
            return None
        lengths = text_lengths(eval_dataset)
        if lengths is None or not self.args.eval_do_concat_batches:  # per-batch outputs cannot be reordered
            return SequentialSampler(eval_dataset)
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        # Keyed by the dataset the DataLoader reads (held, so its id stays its own while we keep it).
        self.eval_orders[id(eval_dataset)] = (eval_dataset, order)
        return order

    def evaluation_loop(self, dataloader, *args, **kwargs):
        """Trainer's loop; predictions read longest first (`_get_eval_sampler`) return to the dataset's order.
        The metrics, computed inside the loop, do not depend on the order."""
        ema = self.ema.swapped_in(self.model) if self.ema is not None else nullcontext()
        with ema, prediction_attention(self.model):  # a forward pass alone: the checkpoint's own kernel
            output = super().evaluation_loop(dataloader, *args, **kwargs)
        _, order = self.eval_orders.get(id(getattr(dataloader, "dataset", None)), (None, None))
        if order is None:
            return output
        back = np.argsort(order)
        return output._replace(
            predictions=nested_reorder(output.predictions, back), label_ids=nested_reorder(output.label_ids, back)
        )

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
        per_device = self._train_batch_size // max(args.n_gpu, 1)  # the size `auto_batch_size` settled on
        return max(math.ceil(per_process / per_device) // args.gradient_accumulation_steps, 1)

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.batch_transform is not None:
            inputs = self.batch_transform(inputs)
        # A FinetuneTrainingArguments field (plain args have none): cheaper dropout masks on CPUs (`modeling.dropout`).
        fast = getattr(self.args, "fast_dropout", False) and self.args.device.type == "cpu"
        with cpu_fast_dropout(fast):
            loss = super().training_step(model, inputs, num_items_in_batch)
        # [loss not finite, stop signal received], summed over processes.
        stop_flag = torch.tensor(self.stop_on_signal.received is not None, device=loss.device)
        status = torch.stack([~torch.isfinite(loss), stop_flag]).to(torch.int32)
        if self.args.world_size > 1:
            status = self.accelerator.reduce(status, reduction="sum")
        diverged, stop = status.tolist()
        if diverged:
            raise TrainingDiverged(self.divergence_message(float(loss)))
        self.stop_on_signal.agreed = self.stop_on_signal.agreed or stop > 0
        return loss

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = self.model if model is None else model
        if self.ema is not None:
            self.ema.load(Path(resume_from_checkpoint))
        if load_adapter_in_place(Path(resume_from_checkpoint), model):
            return
        if not load_renamed_weights(Path(resume_from_checkpoint), model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def use_ema_weights(self) -> None:
        """After training (and the best checkpoint's reload): the model takes the EMA weights it is saved with."""
        if self.ema is not None:
            best = self.state.best_model_checkpoint if self.args.load_best_model_at_end else None
            self.ema.use_for_model(self.model, best)

    def _load_best_model(self):
        """Trainer's reload, except for a checkpoint saved under legacy weight names (ViT): that one is read
        through `from_pretrained`, strictly. Trainer's non-strict load matched none of its names and
        warned about every weight ("unexpected keys", 60 names for a 4-layer ViT) although the weights
        were right after our reload, so a user reading it believed the model broken; a real mismatch
        still fails loudly (`load_renamed_weights`)."""
        best = self.state.best_model_checkpoint
        plain = not (self.is_deepspeed_enabled or self.is_fsdp_enabled)
        if best and plain and load_renamed_weights(Path(best), self.model):
            logger.info("reloaded the best checkpoint %s through from_pretrained (renamed weights)", best)
            return
        super()._load_best_model()

    def _save_checkpoint(self, model, trial):
        """Trainer's save, then our completion sentinel, then rotation: never the other way round, so
        older complete checkpoints are deleted only once the new one is complete (`hf_finetune.engine.checkpoints`)."""
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError, SafetensorError) as exc:  # disk full, quota, file size limit, I/O error
            raise CheckpointNotSaved(self.save_failure_message(exc)) from None
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            run_dir = self._get_output_dir(trial=trial)
            step = self.state.global_step
            if self.ema is not None:  # before the sentinel: a complete checkpoint always holds its EMA
                self.ema.save(Path(run_dir) / f"{PREFIX_CHECKPOINT_DIR}-{step}")
            mark_checkpoint_complete(Path(run_dir) / f"{PREFIX_CHECKPOINT_DIR}-{step}", step)
            rotate_checkpoints(run_dir, limit, best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

    def save_failure_message(self, exc: BaseException) -> str:
        out = Path(self.args.output_dir)
        saved = newest_complete(out)
        free = shutil.disk_usage(out).free / 1e9
        return (
            f"could not write checkpoint-{self.state.global_step} ({first_line(exc)}; {free:.2f} GB free in {out}); "
            + (
                f"the newest complete checkpoint, {saved}, is intact and `--resume auto` continues from it once "
                "there is space"
                if saved
                else "no complete checkpoint exists yet"
            )
        )

    def divergence_message(self, loss: float) -> str:
        value = loss if not math.isfinite(loss) else "non-finite on another process"
        step = self.state.global_step + 1  # the optimizer step this batch belongs to
        saved = newest_complete(Path(self.args.output_dir))
        where = (
            f"the newest checkpoint saved before it is {saved} (--resume {saved})"
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
