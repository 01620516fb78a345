"""Regularisers: mixup/CutMix targets, label smoothing (and class weights) in closed form, the weights' EMA
(closed form, saved, in checkpoints), stochastic depth reaching the config, batch augmentation random in
training and deterministic in evaluation, and the option combinations that are refused in one line.

Real images (scikit-learn digits), tiny models built locally; the end-to-end EMA run is marked slow.
"""

import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file
from test_bad_input import assert_one_line_error
from torch.nn import functional as F
from transformers import AutoConfig, AutoModelForImageClassification, ViTImageProcessor

from hf_finetune.data.batch_augment import BatchAugmentation, BatchMix
from hf_finetune.data.images import ImageTransform, StagedImages
from hf_finetune.engine.ema import EMA_FILE, WeightEma, ema_decay_at
from hf_finetune.modeling.losses import classification_loss
from hf_finetune.modeling.regularisation import config_overrides
from hf_finetune.recipes import config_from_dict

PROCESSOR = ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def constant_images(n: int, size: int = 16) -> torch.Tensor:
    """Image i is filled with the value i + 1: every pixel of a mixed image says where it came from."""
    return torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, size, size).clone()


def test_mixup_mixes_labels_with_the_lambda_of_the_images():
    torch.manual_seed(0)
    images, labels = constant_images(8), torch.arange(8)
    mix = BatchMix(num_labels=8, mixup_alpha=0.8, cutmix_alpha=0.0, prob=1.0, switch_prob=0.0)
    mixed, targets = mix(images, labels)
    assert targets.shape == (8, 8) and torch.allclose(targets.sum(1), torch.ones(8))
    shares = set()
    for i in range(8):
        own = targets[i, i].item()
        partner = (
            i
            if own == pytest.approx(1.0)
            else int(torch.cat([targets[i, :i], torch.tensor([-1.0]), targets[i, i + 1 :]]).argmax())
        )
        expected = own * (i + 1) + (1 - own) * (partner + 1)
        assert torch.allclose(mixed[i], torch.full_like(mixed[i], expected), atol=1e-5)  # the image's blend
        if partner != i:
            shares.add(round(own, 5))
    assert len(shares) == 1  # one lambda for the batch


def test_cutmix_label_weights_match_the_pasted_area():
    torch.manual_seed(1)
    images, labels = constant_images(8), torch.arange(8)
    mix = BatchMix(num_labels=8, mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, switch_prob=1.0)
    mixed, targets = mix(images, labels)
    pasted = []
    for i in range(8):
        own_area = (mixed[i] == i + 1).float().mean().item()
        assert targets[i, i].item() == pytest.approx(own_area, abs=1e-6)  # label weight = area still its own
        others = [j for j in range(8) if j != i and targets[i, j] > 0]
        for j in others:
            assert targets[i, j].item() == pytest.approx((mixed[i] == j + 1).float().mean().item(), abs=1e-6)
        pasted.append(1 - own_area)
    assert max(pasted) > 0  # something was cut and pasted


def test_mixing_probability_zero_leaves_the_batch_alone_with_one_hot_targets():
    images, labels = constant_images(4), torch.tensor([0, 1, 1, 2])
    mixed, targets = BatchMix(3, 0.8, 1.0, prob=0.0, switch_prob=0.5)(images, labels)
    assert torch.equal(mixed, images) and torch.equal(targets, F.one_hot(labels, 3).float())


def test_label_smoothing_matches_the_closed_form_with_and_without_class_weights():
    torch.manual_seed(2)
    logits, labels, eps, classes = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2]), 0.1, 4
    log_p = logits.log_softmax(-1)
    smoothed = (1 - eps) * F.one_hot(labels, classes) + eps / classes
    plain = classification_loss(None, eps)(logits, labels)
    assert plain.item() == pytest.approx(-(smoothed * log_p).sum(-1).mean().item(), rel=1e-6)
    assert plain > classification_loss(None, 0.0)(logits, labels) - 1  # finite, and not the unsmoothed value
    assert plain.item() != pytest.approx(classification_loss(None, 0.0)(logits, labels).item())
    w = torch.tensor([1.0, 2.0, 0.5, 4.0])
    weighted = classification_loss(w, eps)(logits, labels)
    # torch's rule: per-class weights on each term, normalised by the weights of the true classes
    expected = -(smoothed * w * log_p).sum(-1).sum() / w[labels].sum()
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)
    # soft (mixed) targets: smoothing applies to the blend; weights multiply each class's term; plain batch mean
    soft = 0.7 * F.one_hot(labels, classes) + 0.3 * F.one_hot(labels.roll(1), classes)
    expected_soft = -(((1 - eps) * soft + eps / classes) * w * log_p).sum(-1).mean()
    assert classification_loss(w, eps)(logits, soft.float()).item() == pytest.approx(expected_soft.item(), rel=1e-6)


def test_label_smoothing_reaches_the_class_weighted_loss_of_the_task(digits_data, vit_init_dir):
    from hf_finetune.tasks import TASKS

    cfg = config_from_dict({"task": "image_classification", "model_name_or_path": str(vit_init_dir),
                            "dataset_name": "packaged:digits", "class_weights": "auto", "label_smoothing_factor": 0.2,
                            "max_train_samples": 100})  # fmt: skip
    task = TASKS.get("image_classification")(cfg)
    data = task.load_data()
    loss = task.loss_function(data)
    logits, labels = torch.randn(3, 10), torch.tensor([1, 2, 3])
    weight = torch.tensor(list(task.class_weights.values()))
    assert loss(logits, labels).item() == pytest.approx(
        F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2).item(), rel=1e-4
    )


def test_ema_equals_the_closed_form_after_k_steps():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightEma(model, decay=0.95, warmup=True)
    expected = [t.detach().clone() for t in model.state_dict().values()]
    for step in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(4, 3))  # moves the BatchNorm running statistics (buffers)
        ema.on_step_end(None, None, None, model=model)
        d = ema_decay_at(step, 0.95, True)
        assert d == pytest.approx(min(0.95, (1 + step) / (10 + step)))
        for i, t in enumerate(model.state_dict().values()):
            expected[i] = d * expected[i] + (1 - d) * t if t.is_floating_point() else t.clone()
    averaged = list(ema.averaged.module.state_dict().values())
    for got, want in zip(averaged, expected, strict=True):
        assert torch.allclose(got.float(), want.float(), atol=1e-6)
    # evaluation sees the average, and the live weights come back afterwards
    live = [p.detach().clone() for p in model.parameters()]
    with ema.swapped_in(model):
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ema.averaged.module.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), live, strict=True))


def test_drop_path_and_dropout_reach_the_config_and_are_refused_where_there_are_none(tmp_path, vit_init_dir):
    from hf_finetune.settings.arguments import ModelArguments

    config = AutoConfig.for_model("convnext", num_stages=2, hidden_sizes=[8, 16], depths=[1, 2], num_labels=2)
    folder = tmp_path / "convnext"
    AutoModelForImageClassification.from_config(config).save_pretrained(folder)
    args = ModelArguments(model_name_or_path=str(folder), drop_path_rate=0.3)
    overrides = config_overrides(args, str(folder))
    assert overrides == {"drop_path_rate": 0.3}
    model = AutoModelForImageClassification.from_pretrained(folder, **overrides)
    rates = [m.drop_prob for m in model.modules() if type(m).__name__.endswith("DropPath")]
    # linearly 0 -> 0.3 over the 3 blocks (the first, at 0, is an identity)
    assert model.config.drop_path_rate == 0.3 and sorted(rates) == pytest.approx([0.15, 0.3])
    vit = ModelArguments(model_name_or_path=str(vit_init_dir), hidden_dropout=0.2, attention_dropout=0.1)
    assert config_overrides(vit, str(vit_init_dir)) == {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.1}
    from hf_finetune.errors import UserError

    with pytest.raises(UserError, match="drop_path_rate cannot be set for this checkpoint: its ViTConfig"):
        config_overrides(ModelArguments(model_name_or_path=str(vit_init_dir), drop_path_rate=0.1), str(vit_init_dir))


def test_batch_augmentation_is_random_in_training_seeded_and_deterministic_in_evaluation(digits_data):
    rows = digits_data["train"].select(range(8))
    batch = {"image": rows["image"], "label": rows["label"]}
    staged = StagedImages(PROCESSOR, "image", "label", 10, False)(batch)
    assert staged["pixel_values"].dtype == torch.uint8 and staged["pixel_values"].shape == (8, 3, 16, 16)
    assert torch.equal(
        staged["pixel_values"], StagedImages(PROCESSOR, "image", "label", 10, False)(batch)["pixel_values"]
    )
    augment = BatchAugmentation(PROCESSOR, "trivial", 0.5, random_erasing=0.5, mix=BatchMix(10, 0.8, 1.0, 1.0, 0.5))
    first, second = augment(staged), augment(staged)
    assert first["pixel_values"].shape == (8, 3, 16, 16) and first["labels"].shape == (8, 10)
    assert not torch.equal(first["pixel_values"], second["pixel_values"])
    torch.manual_seed(7)
    a = augment(staged)
    torch.manual_seed(7)
    b = augment(staged)
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and torch.equal(a["labels"], b["labels"])
    evaluation = ImageTransform(PROCESSOR, "image", "label", 10, False)
    one, two = evaluation(batch)["pixel_values"], evaluation(batch)["pixel_values"]
    assert torch.equal(one, two)
    # without a random policy the batch pipeline is exactly the processor's resize + normalise
    plain = BatchAugmentation(PROCESSOR, "none", 0.5)(staged)["pixel_values"]
    assert torch.allclose(plain, one, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--mixup_alpha", "0.8", "--multi_label", "true"], "mixup/cutmix are for single-label"),
        (["--ema_decay", "1.5"], "ema_decay must be 0 .off. or in .0.9, 1."),
        (["--random_erasing", "2"], r"random_erasing must be in \[0, 1\]"),
        (["--drop_path_rate", "0.1"], "drop_path_rate cannot be set for this checkpoint"),
    ],
)
def test_bad_image_regulariser_options_fail_in_one_line(extra, pattern, vit_init_dir, digit_folder, tmp_path, capsys):
    argv = ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(vit_init_dir),
            "--dataset_name", str(digit_folder), "--output_dir", str(tmp_path / "out"), *extra]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert_one_line_error(err, pattern)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--mixup_alpha", "0.8"], "mixup_alpha augment training images; task text_classification does not use"),
        (["--label_smoothing_factor", "0.1", "--multi_label", "true"], "label_smoothing_factor is for single-label"),
    ],
)
def test_bad_text_regulariser_options_fail_in_one_line(extra, pattern, fortunes_csv, tmp_path, capsys):
    argv = ["train", "--config", "fortunes_topics", "--train_file", str(fortunes_csv["train"]), "--text_column",
            "review", "--label_column", "topic", "--output_dir", str(tmp_path / "out"), *extra]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert_one_line_error(err, pattern)


@pytest.mark.slow
def test_ema_run_evaluates_selects_and_saves_the_average(vit_init_dir, digit_folder, tmp_path, capsys):
    """A real run with EMA, mixup and label smoothing: every checkpoint holds ema.safetensors, and the saved
    model is the best checkpoint's average, not its raw weights."""
    out = tmp_path / "ema"
    argv = ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(vit_init_dir),
            "--dataset_name", str(digit_folder), "--output_dir", str(out), "--num_train_epochs", "3",
            "--per_device_train_batch_size", "16", "--ema_decay", "0.9", "--mixup_alpha", "0.8",
            "--cutmix_alpha", "1.0", "--label_smoothing_factor", "0.1", "--random_erasing", "0.25",
            "--save_total_limit", "5", "--disable_tqdm", "true"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err[-2000:]
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints and all((c / EMA_FILE).is_file() for c in checkpoints)
    import json

    best = json.loads((out / "trainer_state.json").read_text())["best_model_checkpoint"]
    average = {
        k.removeprefix("module."): v for k, v in load_file(f"{best}/{EMA_FILE}").items() if k.startswith("module.")
    }
    raw = AutoModelForImageClassification.from_pretrained(best).state_dict()
    saved = AutoModelForImageClassification.from_pretrained(out).state_dict()
    assert set(saved) <= set(average)
    assert all(torch.equal(saved[k], average[k]) for k in saved)
    assert any(not torch.equal(saved[k], raw[k]) for k in saved)  # the average, not the raw weights


def test_label_smoothing_reaches_text_classification_through_the_same_loss(fortunes_csv):
    from hf_finetune.tasks import TASKS

    cfg = config_from_dict({"task": "text_classification", "model_name_or_path": "packaged:all-MiniLM-L6-v2",
                            "train_file": str(fortunes_csv["train"]), "text_column": "review", "label_column": "topic",
                            "label_smoothing_factor": 0.15})  # fmt: skip
    task = TASKS.get("text_classification")(cfg)
    loss = task.loss_function(task.load_data())
    logits, labels = torch.randn(4, 4), torch.tensor([0, 1, 2, 3])
    assert loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.15).item())
