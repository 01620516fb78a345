"""The Trainer of a multi-task run: one task per batch, its head's loss."""

from __future__ import annotations

import math
from pathlib import Path

from hf_finetune.engine.trainer import StrategyTrainer
from hf_finetune.tasks.multi_task.folder import load_multitask_weights, save_multitask
from hf_finetune.tasks.multi_task.sampler import TaskBatchSampler, TaskSampling


class MultiTaskTrainer(StrategyTrainer):
    """`StrategyTrainer` whose training batches hold one task each (`TaskBatchSampler`) and whose
    checkpoints and final folder use the multi-task format (`save_multitask`)."""

    def __init__(self, *args, sampling: TaskSampling, **kwargs):
        self.sampling = sampling
        super().__init__(*args, **kwargs)

    def task_batch_sampler(self) -> TaskBatchSampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return TaskBatchSampler(self.sampling, self._train_batch_size, seed)

    def get_train_dataloader(self):
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.task_batch_sampler(),
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def steps_per_epoch(self) -> float:
        batches = self.sampling.batches_per_epoch(self._train_batch_size)
        return max(math.ceil(batches / self.args.world_size) // self.args.gradient_accumulation_steps, 1)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        save_multitask(self.accelerator.unwrap_model(self.model), folder, state_dict)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(folder))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        load_multitask_weights(Path(resume_from_checkpoint), self.model if model is None else model)

    def _load_best_model(self) -> None:
        load_multitask_weights(Path(self.state.best_model_checkpoint), self.model)
