"""`auto_batch_size`: on out-of-memory the per-device batch shrinks and accumulation grows, so the
effective batch the learning rate was tuned for is kept, and training completes.

The out-of-memory error is raised at the narrowest seam: a forward hook on the real MiniLM raises
`torch.OutOfMemoryError` (what CUDA raises) for training batches above 8 examples, as a device
that fits only 8 would.
"""

import pytest
import torch
from conftest import read_json
from transformers import TrainerCallback

from hf_finetune.engine.trainer import keep_effective_batch


@pytest.mark.parametrize(
    ("requested", "proposed", "failed", "expected"),
    [
        ((32, 1), 28, 32, (16, 2)),  # Trainer proposes 0.9x; the largest divisor below it
        ((32, 1), 25, 16, (8, 4)),  # a proposal still above the size that failed goes one divisor lower
        ((16, 2), 28, 32, (16, 2)),  # 16 x 2 is 32 per process as well
        ((24, 1), 21, 24, (12, 2)),
        ((6, 1), 5, 6, (3, 2)),
        ((5, 1), 4, 5, (1, 5)),  # a prime batch falls to 1 x 5
    ],
)
def test_retry_sizes_keep_the_effective_batch(requested, proposed, failed, expected):
    per_device, accumulation = keep_effective_batch(*requested, proposed, failed)
    assert (per_device, accumulation) == expected
    assert per_device * accumulation == requested[0] * requested[1]


def test_no_size_left_is_an_out_of_memory_error():
    with pytest.raises(RuntimeError, match="out of memory"):
        keep_effective_batch(32, 1, 0, 1)


class DeviceThatFits(TrainerCallback):
    """Training batches above `limit` examples raise out-of-memory in the forward pass; records what ran."""

    def __init__(self, limit: int):
        self.limit, self.trained_batches, self.hooked = limit, [], False

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self.hooked:  # Trainer calls this again on every retry
            model.register_forward_pre_hook(self.check, with_kwargs=True)
            self.hooked = True

    def check(self, module, args, kwargs):
        if module.training:
            size = kwargs["input_ids"].shape[0]
            if size > self.limit:
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried a batch of {size} (simulated)")
            self.trained_batches.append(size)

    def on_train_end(self, args, state, control, **kwargs):
        self.accumulation = args.gradient_accumulation_steps


@pytest.mark.slow
def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(tmp_path, fortunes_csv):
    from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path
    from hf_finetune.training.run import run

    values = load_recipe(resolve_recipe_path("fortunes_topics"))
    values.update(
        train_file=str(fortunes_csv["train"]), text_column="review", label_column="topic", auto_batch_size=True,
        max_train_samples=64, max_eval_samples=32, num_train_epochs=1, per_device_train_batch_size=32,
        save_strategy="no", load_best_model_at_end=False, output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    device = DeviceThatFits(limit=8)
    result = run(config_from_dict(values, recipe="fortunes_topics"), callbacks=[device])

    state = read_json(tmp_path / "out" / "trainer_state.json")
    assert state["train_batch_size"] == 8  # 32 failed, 16 failed, 8 fits
    assert device.accumulation == 4  # 8 x 4 = 32 per optimizer step, as asked
    assert set(device.trained_batches) == {8} and len(device.trained_batches) == 64 // 8
    assert state["global_step"] == state["max_steps"] == 2  # 64 samples / effective batch 32
    assert 0 <= result.metrics["validation"]["accuracy"] <= 1  # trained to the end and evaluated
