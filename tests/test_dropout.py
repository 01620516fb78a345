"""CPU dropout masks from 64-bit words (`hf_finetune.modeling.dropout`): still dropout, seeded, used by training."""

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from hf_finetune.modeling.dropout import LEVELS, cpu_fast_dropout, fast_dropout, keep_mask
from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path
from hf_finetune.training.run import run


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_element_is_kept_with_probability_one_minus_p_in_every_lane(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([4 * 250_000]), p)
    # The four 16-bit lanes of each 64-bit word: a word drawn from 63 bits leaves one lane's sign bit
    # always 0, and that lane's rate off by p/2 (0.05 at p = 0.1). 250,000 draws a lane: std ~0.001.
    lanes = mask.view(-1, 4).float().mean(0)
    expected = 1 - round(p * LEVELS) / LEVELS
    assert torch.allclose(lanes, torch.full((4,), expected), atol=0.005), lanes
    # Neighbours are independent: a kept element says nothing about the next one.
    pairs = (mask[:-1] & mask[1:]).float().mean().item()
    assert pairs == pytest.approx(expected**2, abs=0.005)


def test_the_expected_activation_and_the_gradient_are_those_of_dropout():
    torch.manual_seed(1)
    x = torch.ones(200_000, requires_grad=True)
    y = fast_dropout(x, p=0.1)
    kept = y != 0
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.allclose(y[kept], torch.full_like(y[kept], LEVELS / (LEVELS - round(0.1 * LEVELS))))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask * scale)/dx = mask * scale
    inplace = torch.ones(1000)
    assert fast_dropout(inplace, p=0.5, inplace=True) is inplace and (inplace == 0).any()


def test_the_masks_follow_torchs_seed():
    x = torch.ones(64, 48, 384)
    torch.manual_seed(7)
    first = fast_dropout(x, p=0.1)
    torch.manual_seed(7)
    assert torch.equal(fast_dropout(x, p=0.1), first)
    assert not torch.equal(fast_dropout(x, p=0.1), first)  # the generator moved on


def test_what_is_not_dropout_is_left_to_torch():
    x = torch.randn(100)
    assert torch.equal(fast_dropout(x, p=0.1, training=False), x)
    assert torch.equal(fast_dropout(x, p=1.0), torch.zeros(100))
    assert fast_dropout(x, p=0.0) is x


def test_the_switch_restores_torchs_dropout_even_after_an_error():
    original = F.dropout
    with pytest.raises(RuntimeError), cpu_fast_dropout():
        assert F.dropout is fast_dropout
        raise RuntimeError("a step failed")
    assert F.dropout is original
    with cpu_fast_dropout(enabled=False):
        assert F.dropout is original


class KernelsSeen(TrainerCallback):
    """(training?, dropout function, attention kernel) of every forward pass the run makes (a forward pre-hook)."""

    def __init__(self):
        self.seen = set()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        model.register_forward_pre_hook(self.record)

    def record(self, module, inputs):
        self.seen.add((module.training, F.dropout, module.config._attn_implementation))


@pytest.mark.parametrize("enabled, precision", [(True, "bf16"), (False, "fp32")])
def test_training_steps_on_a_cpu_use_the_fast_masks_unless_turned_off(enabled, precision, tmp_path, fortunes_csv):
    values = {
        **load_recipe(resolve_recipe_path("fortunes_topics")),
        "train_file": str(fortunes_csv["train"]), "text_column": "review", "label_column": "topic",
        "max_train_samples": 32, "max_eval_samples": 16, "max_steps": 2, "per_device_train_batch_size": 16,
        "save_strategy": "no", "load_best_model_at_end": False, "fast_dropout": enabled, "precision": precision,
        "output_dir": str(tmp_path / "run"), "disable_tqdm": True,
    }  # fmt: skip
    kernels = KernelsSeen()
    run(config_from_dict(values), callbacks=(kernels,))
    torch_dropout = F.dropout
    assert torch_dropout is not fast_dropout  # nothing leaks out of the steps
    # Under CPU bf16, training steps run eager attention and evaluation the checkpoint's SDPA
    # (`modeling.attention.prediction_attention`); evaluation never draws masks.
    step = (True, fast_dropout, "eager") if enabled else (True, torch_dropout, "sdpa")
    assert kernels.seen == {step, (False, torch_dropout, "sdpa")}
