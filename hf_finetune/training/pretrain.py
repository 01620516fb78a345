"""`hf-finetune pretrain`: a ViT pretrained offline on the Fashion-MNIST source classes, at one cached path.

No pretrained ViT installs from a package here, so the suite makes its own, honestly:
write a randomly initialised `ViTForImageClassification` (from a `ViTConfig`) and its image
processor as an ordinary checkpoint folder, then train it with the ordinary `train` run (the
`vit_fashion_source` recipe) on the source classes 0, 2, 4, 6, 8 of the Fashion-MNIST train
file. The result is a normal checkpoint folder: fine-tuning loads it exactly as it loads
`google/vit-base-patch16-224`, with a new head for the target labels. A finished folder is
reused, so demos, tests and benchmarks share one pretrained model.

The random-init folder stays beside it: fine-tuning from it is the from-scratch baseline
(same architecture, same processor, random weights).
"""

from __future__ import annotations

import logging
from pathlib import Path

from hf_finetune.assets.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_SOURCE_CLASSES
from hf_finetune.assets.models import write_init_checkpoint
from hf_finetune.outputs import is_finished
from hf_finetune.recipes import load_recipe, parse_config, resolve_recipe_path
from hf_finetune.training.run import run

logger = logging.getLogger("hf_finetune")

SOURCE_RECIPE = "vit_fashion_source"


def source_recipe() -> dict:
    return load_recipe(resolve_recipe_path(SOURCE_RECIPE))


def init_dir() -> Path:
    """The random-init checkpoint folder, as named by the pretraining recipe (one source of truth)."""
    return Path(source_recipe()["model_name_or_path"])


def pretrained_dir() -> Path:
    return Path(source_recipe()["output_dir"])


def pretrain(argv: list[str] | None = None) -> Path:
    """Pretrain on the source classes (recipe `vit_fashion_source`, overridable), or reuse a finished folder."""

    cfg = parse_config(
        ["--config", SOURCE_RECIPE, *(argv or [])], task="image_classification", prog="hf-finetune pretrain"
    )
    out = Path(cfg.training.output_dir)
    if is_finished(out) and not cfg.run.overwrite_output_dir:
        logger.info("reusing the pretrained ViT in %s (pass --overwrite_output_dir to pretrain again)", out)
        return out
    write_init_checkpoint(
        Path(cfg.model.model_name_or_path),
        [FASHION_MNIST_CLASSES[c] for c in FASHION_MNIST_SOURCE_CLASSES],
        seed=cfg.training.seed,
    )
    run(cfg)
    return out
