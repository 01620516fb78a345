"""Domain-adversarial training (strategy `dann`): the gradient reversal, its schedule, the loss on unlabelled
rows, bad input, and one short real run (clean Fashion-MNIST -> photo-blended Fashion-MNIST, pretrained ViT)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import run_cli

from hf_finetune.strategies.dann.layers import (
    TARGET_LABEL,
    DomainClassifier,
    reversal_weight,
    reverse_gradient,
    safe_classification_loss,
)


def test_gradient_reversal_flips_and_scales_the_encoder_gradient_only():
    """Same weights, same batch, with and without the reversal layer: the encoder's gradient is -lambda times
    the plain one; the domain classifier's own gradient (behind the layer) is unchanged; forward is identity."""
    torch.manual_seed(0)
    encoder, domain = torch.nn.Linear(6, 5), DomainClassifier(5, 8)
    x, is_target = torch.randn(10, 6), (torch.arange(10) % 2).float()

    def gradients(weight: float | None):
        encoder.zero_grad()
        domain.zero_grad()
        features = encoder(x)
        reversed_ = features if weight is None else reverse_gradient(features, weight)
        assert torch.equal(reversed_, features)
        torch.nn.functional.binary_cross_entropy_with_logits(domain(reversed_), is_target).backward()
        return (
            [p.grad.clone() for p in encoder.parameters()],
            [p.grad.clone() for p in domain.parameters()],
        )

    plain_encoder, plain_domain = gradients(None)
    for weight in (1.0, 0.3):
        reversed_encoder, reversed_domain = gradients(weight)
        for plain, reversed_ in zip(plain_encoder, reversed_encoder, strict=True):
            assert plain.abs().sum() > 0
            torch.testing.assert_close(reversed_, -weight * plain)
        for plain, same in zip(plain_domain, reversed_domain, strict=True):
            torch.testing.assert_close(same, plain)


def test_a_checkpoint_with_the_domain_classifier_reloads_under_renamed_weights(tmp_path):
    """Resuming a ViT run: its checkpoint holds legacy weight names (loaded through from_pretrained)
    and the domain classifier, which from_pretrained does not know; both must come back."""
    from tiny_models import CASES, build

    from hf_finetune.engine.checkpoints import load_renamed_weights
    from hf_finetune.strategies.dann.strategy import DOMAIN_CLASSIFIER

    vit = next(case for case in CASES if case.model_type == "vit")
    saved = build(vit)
    setattr(saved, DOMAIN_CLASSIFIER, DomainClassifier(saved.config.hidden_size, 8))
    saved.save_pretrained(tmp_path)
    resumed = build(vit)  # the same seed: perturb every weight so that nothing matches by chance
    setattr(resumed, DOMAIN_CLASSIFIER, DomainClassifier(saved.config.hidden_size, 8))
    with torch.no_grad():
        for param in resumed.parameters():
            param.add_(1.0)
    assert load_renamed_weights(tmp_path, resumed)
    expected, got = saved.state_dict(), resumed.state_dict()
    assert set(expected) == set(got) and any(name.startswith(DOMAIN_CLASSIFIER) for name in got)
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_reversal_schedule_rises_from_zero_to_the_weight():
    grid = [i / 100 for i in range(101)]
    values = [reversal_weight(p, max_weight=0.5, gamma=10) for p in grid]
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(0.5, rel=1e-4)  # 2 / (1 + e^-10) - 1 = 0.99991
    assert all(b > a for a, b in zip(values, values[1:], strict=False))  # strictly rising
    assert reversal_weight(0.2, 1.0, 10) == pytest.approx(2 / (1 + math.exp(-2)) - 1)
    assert reversal_weight(-1.0) == 0.0 and reversal_weight(2.0) == reversal_weight(1.0)  # progress clipped
    assert reversal_weight(0.2, gamma=5) < reversal_weight(0.2, gamma=10)  # gamma sets the steepness


def test_classification_loss_ignores_unlabelled_rows_and_stays_finite_without_any():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([2, TARGET_LABEL, 0, TARGET_LABEL])
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    torch.testing.assert_close(safe_classification_loss(logits, labels), expected)
    only_target = torch.full((4,), TARGET_LABEL)
    assert torch.isnan(torch.nn.functional.cross_entropy(logits, only_target))  # what the models would return
    loss = safe_classification_loss(logits, only_target)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_blended_fashion_mnist_is_deterministic_and_keeps_the_garment():
    import numpy as np

    from hf_finetune.assets.fashion_mnist import blend_with_photos, fashion_mnist_arrays

    _, arrays = fashion_mnist_arrays((1, 3))
    images = arrays["test"][0][:50]
    a, b = blend_with_photos(images, seed=0), blend_with_photos(images, seed=0)
    assert a.shape == (50, 28, 28, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, blend_with_photos(images, seed=1))
    # |patch - garment|: on bright garment pixels the blend is far from the background patch; it is real change.
    gray = a.mean(-1)
    assert np.abs(gray - images).mean() > 20


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--strategy", "full+dann"], "needs target-domain data"),
        (["--strategy", "lora+dann", "--dann_target_dataset", "x"], "cannot be combined"),
        (["--strategy", "dann", "--dann_target_dataset", "x", "--class_weights", "auto"], "class_weights"),
        (["--strategy", "dann", "--dann_target_dataset", "x", "--dann_weight", "-1"], "dann_weight must be"),
    ],
)
def test_bad_dann_settings_are_user_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = run_cli(["train", "--config", "fortunes_topics", *argv, "--output_dir", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_target_file_without_the_text_column_is_named_before_the_output_folder(tmp_path, capsys):
    target = tmp_path / "target.csv"
    target.write_text("review\nsome unlabelled text\nmore text\n", encoding="utf-8")
    out = tmp_path / "model"
    argv = ["train", "--config", "fortunes_topics_dann", "--dann_target_train_file", str(target),
            "--max_train_samples", "40", "--output_dir", str(out)]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "column 'text' not found" in err and "dann target data" in err
    assert not out.exists()


@pytest.mark.slow
def test_dann_on_real_images_beats_the_baseline_and_logs_the_domain_classifier(tmp_path, pretrained_vit):
    """Clean Fashion-MNIST target classes (labelled) + photo-blended ones (unlabelled), 3 short epochs."""
    from PIL import Image
    from safetensors import safe_open
    from transformers import pipeline

    import hf_finetune

    result = hf_finetune.train(
        "fashion_mnist_target_dann", model_name_or_path=str(pretrained_vit), output_dir=str(tmp_path / "dann"),
        max_train_samples=320, max_eval_samples=200, num_train_epochs=3, logging_steps=2, save_total_limit=1,
    )  # fmt: skip
    out = result.output_dir
    baseline = result.majority_baseline
    assert result.metrics["test"]["accuracy"] > baseline + 0.2  # 5 classes: the majority is ~0.2
    target = result.extra_metrics["target"]
    assert 0 <= target["accuracy"] <= 1
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["extra_evaluations"]["target"]["accuracy"] == target["accuracy"]

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    training = [row for row in history if "loss" in row]
    assert training and all(0 <= row["dann_domain_accuracy"] <= 1 for row in training)
    lambdas = [row["dann_lambda"] for row in training]
    assert lambdas == sorted(lambdas) and 0 < lambdas[0] < lambdas[-1] <= 1
    assert any("eval_target_accuracy" in row for row in history)
    assert any("eval_validation_accuracy" in row for row in history)

    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert not [k for k in handle.keys() if "dann" in k]  # the domain classifier is not saved
    classify = pipeline("image-classification", model=str(out))
    image = Image.new("RGB", (28, 28), (120, 60, 30))
    assert len(classify(image, top_k=5)) == 5
