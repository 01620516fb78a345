"""Which task each batch comes from: proportional, uniform or temperature sampling, seeded per epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hf_finetune.errors import UserError

SAMPLINGS = ("proportional", "uniform", "temperature")


@dataclass
class TaskSampling:
    """Training rows per task (contiguous in the combined train split, in task order) and each task's
    probability of giving the next batch."""

    sizes: list[int]
    probabilities: list[float]

    @classmethod
    def build(cls, sizes: list[int], weights: list[float], sampling: str, temperature: float) -> TaskSampling:
        """p_t proportional to n_t^(1/T): T = 1 for `proportional`, T = inf (all equal) for `uniform`.
        A task of weight 0 gets no batches (it would add nothing to the loss)."""
        if sampling not in SAMPLINGS:
            raise UserError(f"multitask_sampling must be one of {', '.join(SAMPLINGS)}, got '{sampling}'")
        exponent = {"proportional": 1.0, "uniform": 0.0}.get(sampling, 1.0 / temperature)
        scores = [n**exponent if w > 0 else 0.0 for n, w in zip(sizes, weights, strict=True)]
        total = sum(scores)
        if total <= 0:
            raise UserError("every task has weight 0: give at least one task a positive multitask_weights entry")
        return cls(sizes=list(sizes), probabilities=[s / total for s in scores])

    def batches_per_epoch(self, batch_size: int) -> int:
        """As many batches as one pass over every trained task's rows takes."""
        return sum(math.ceil(n / batch_size) for n, p in zip(self.sizes, self.probabilities, strict=True) if p > 0)


class TaskBatchSampler(torch.utils.data.Sampler):
    """Batches of one task each: the task drawn by `probabilities`, its rows from a reshuffled cycle.

    Each task's rows are walked in a random order and reshuffled when used up, so an
    oversampled small task repeats its examples only after showing all of them. The order is
    fixed by (seed, epoch), as `SeededLengthGroupedSampler`'s is, so a resumed run sees the batches
    the interrupted one would have.
    """

    def __init__(self, sampling: TaskSampling, batch_size: int, seed: int):
        self.sampling, self.batch_size, self.seed, self.epoch = sampling, batch_size, seed, 0
        self.offsets = [sum(sampling.sizes[:i]) for i in range(len(sampling.sizes))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.sampling.batches_per_epoch(self.batch_size)

    def __iter__(self):
        # Not seed + epoch: seed 42's second epoch would repeat seed 43's first.
        generator = torch.Generator().manual_seed((self.seed << 20) + self.epoch)
        probabilities = torch.tensor(self.sampling.probabilities, dtype=torch.float64)
        tasks = torch.multinomial(probabilities, len(self), replacement=True, generator=generator).tolist()
        streams: dict[int, list[int]] = {}
        for task in tasks:
            size = self.sampling.sizes[task]
            batch: list[int] = []
            while len(batch) < min(self.batch_size, size):
                if not streams.get(task):
                    streams[task] = torch.randperm(size, generator=generator).tolist()
                batch.append(self.offsets[task] + streams[task].pop())
            yield batch
        self.epoch += 1
