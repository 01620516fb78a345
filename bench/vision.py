"""Vision configurations: our image pipeline against a plain Trainer fed by the image processor.

Both fine-tune the same randomly initialised small ViT (`hf_finetune.assets.models`'s architecture,
written once per run so nothing depends on a cached pretraining) on the same Fashion-MNIST
target-class images with the `fashion_mnist_target` recipe's settings. Ours applies the recipe's
augmentation (kornia crop + flip, on each collated batch) as users get it. The plain Trainer runs twice:
with augmentation the way transformers' `run_image_classification.py` example applies it (per image,
in the dataset transform; kornia here, as torchvision's wheels do not load with this CPU torch), and
with the image processor alone; ours also runs without augmentation to tell the pipeline's cost from the
augmentation's.
The plain Trainer runs in fp32 as configured; ours in what the recipe's `precision` resolves to here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.clock import TrainClock
from bench.measure import model_shape
from bench.plain import train_plain

RECIPE = "fashion_mnist_target"


def vision_config(sizes: dict, **overrides):
    from hf_finetune.assets.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_TARGET_CLASSES
    from hf_finetune.assets.models import write_init_checkpoint
    from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path

    init = write_init_checkpoint(
        Path(tempfile.mkdtemp(prefix="vit-")), [FASHION_MNIST_CLASSES[c] for c in FASHION_MNIST_TARGET_CLASSES]
    )
    values = load_recipe(resolve_recipe_path(RECIPE))
    values.update(
        model_name_or_path=str(init),
        max_train_samples=sizes["vision_train"],
        max_eval_samples=sizes["vision_eval"],
        num_train_epochs=sizes["vision_epochs"],
        output_dir=tempfile.mkdtemp(prefix="bench-"),
        disable_tqdm=True,
        **({"seed": sizes["seed"]} if sizes.get("seed") is not None else {}),
        **overrides,
    )
    return config_from_dict(values, recipe=RECIPE)


def plain_vision(name: str, sizes: dict) -> dict:
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from hf_finetune.tasks import TASKS

    cfg = vision_config(sizes)
    data = TASKS.get("image_classification")(cfg).load_data()
    checkpoint = cfg.model.model_name_or_path
    processor = AutoImageProcessor.from_pretrained(checkpoint)

    augment = per_image_augmentation(processor, cfg) if name == "vision_plain_aug" else None

    def transform(batch):
        images = [image.convert("RGB") for image in batch["image"]]
        if augment is None:
            pixels = processor(images, return_tensors="pt")["pixel_values"]
        else:  # run_image_classification.py's `train_transforms`, one image at a time
            pixels = torch.cat([augment(to_tensor(image)) for image in images])
        return {"pixel_values": pixels, "labels": torch.tensor(batch["label"])}

    train, test = (data.splits[s].with_transform(transform) for s in ("train", "test"))
    torch.manual_seed(cfg.training.seed)
    model = AutoModelForImageClassification.from_pretrained(checkpoint, num_labels=len(data.label_names))
    trainer, metrics, accuracy, clock = train_plain(cfg, model, train, test, remove_unused_columns=False)
    return {
        "train_runtime": metrics["train_runtime"],
        "train_samples": len(train) * cfg.training.num_train_epochs,
        "test_accuracy": accuracy,
        "precision": "fp32",
        **vit_shape(model),
        **clock.row(),
    }


def vit_shape(model) -> dict:
    """The ViT's FLOP counts: a token per patch plus the [CLS] token, every image the same length (no padding)."""
    config = model.config
    return {**model_shape(model), "tokens_per_image": (config.image_size // config.patch_size) ** 2 + 1}


def per_image_augmentation(processor, cfg):
    """The recipe's policy (random resized crop + flip, normalise) as a per-image kornia pipeline."""
    import torch
    from kornia import augmentation as K

    from hf_finetune.data.images import processor_geometry

    size, mean, std, _ = processor_geometry(processor)
    return K.AugmentationSequential(
        K.RandomResizedCrop(size, scale=(cfg.data.augmentation_min_scale, 1.0)),
        K.RandomHorizontalFlip(),
        K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std)),
    )


def to_tensor(image):
    """A PIL image as a (1, 3, H, W) float tensor in [0, 1], as torchvision's `ToTensor` gives it."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def ours_vision(name: str, sizes: dict) -> dict:
    import json

    from hf_finetune.training.run import run

    cfg = vision_config(sizes, **({"augmentation": "none"} if name == "vision_ours_noaug" else {}))
    clock = TrainClock()
    result = run(cfg, callbacks=[clock])
    summary = json.loads((Path(cfg.training.output_dir) / "metrics.json").read_text())
    return {
        "train_runtime": summary["train"]["train_runtime"],
        "train_samples": summary["data_sizes"]["train"] * cfg.training.num_train_epochs,
        "test_accuracy": result.metrics["test"]["accuracy"],
        "precision": summary["precision"],  # what the run resolved `precision: auto` to
        **vit_shape(result.model),
        **clock.row(),
    }


CONFIGS = {
    "vision_plain_aug": (
        "plain Trainer, per-image crop + flip (run_image_classification.py style)",
        plain_vision,
        False,
    ),
    "vision_plain": ("plain Trainer + image processor (no augmentation)", plain_vision, False),
    "vision_ours": ("hf_finetune image pipeline (fashion_mnist_target recipe)", ours_vision, True),
    "vision_ours_noaug": ("hf_finetune image pipeline, augmentation none", ours_vision, True),
}
