"""Every shipped vision strategy recipe on the locally pretrained ViT and real Fashion-MNIST images.

The same strategy files as for text; only the recipe differs. Short runs (a real slice,
one epoch) against the session's pretrained ViT checkpoint folder.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file

import hf_finetune
from hf_finetune.recipes import list_recipes

pytestmark = pytest.mark.slow

SHORT = dict(max_train_samples=100, max_eval_samples=200, num_train_epochs=1)
VISION_RECIPES = sorted(name for name in list_recipes() if name.startswith("fashion_mnist_target_"))


@pytest.fixture(scope="module")
def vision_runs(tmp_path_factory, pretrained_vit) -> dict:
    root = tmp_path_factory.mktemp("vision-strategies")
    runs = {}
    for recipe in VISION_RECIPES:
        result = hf_finetune.train(
            recipe, model_name_or_path=str(pretrained_vit), output_dir=str(root / recipe), **SHORT
        )
        runs[recipe.removeprefix("fashion_mnist_target_")] = result
    return runs


def test_every_strategy_has_a_vision_recipe():
    from hf_finetune.strategies import STRATEGIES

    covered = {name.removeprefix("fashion_mnist_target_") for name in VISION_RECIPES} | {"full"}
    assert set(STRATEGIES.all()) <= covered


def test_each_vision_recipe_finishes_with_the_vit_blocks_in_the_card(vision_runs):
    for name, result in vision_runs.items():
        assert (result.output_dir / "run_complete.json").is_file(), name
        assert result.metrics["test"]["accuracy"] >= 0
        card = (result.output_dir / "README.md").read_text(encoding="utf-8")
        assert "| block.3 |" in card and "| head |" in card, name  # the ViT has 4 blocks


def test_vit_frozen_blocks_are_bit_identical_to_the_checkpoint(vision_runs, pretrained_vit):
    """freeze_bottom (2 of 4 blocks): embeddings and blocks 0-1 saved exactly as pretrained; block 3 moved."""
    trained = load_file(vision_runs["freeze_bottom"].output_dir / "model.safetensors")
    original = load_file(pretrained_vit / "model.safetensors")
    frozen = [
        k for k in trained if ".embeddings." in k or any(f".layer.{i}." in k or f".layers.{i}." in k for i in (0, 1))
    ]
    top = [k for k in trained if ".layer.3." in k or ".layers.3." in k]
    assert frozen and top
    assert all(trained[k].equal(original[k]) for k in frozen)
    assert not all(trained[k].equal(original[k]) for k in top)


def test_vit_lora_merges_into_a_model_that_pipeline_loads(vision_runs, tmp_path, capsys):
    from PIL import Image
    from transformers import pipeline

    adapters = vision_runs["lora"].output_dir
    assert (adapters / "adapter_model.safetensors").is_file() and not (adapters / "model.safetensors").exists()
    merged = tmp_path / "merged"
    code, _, err = run_cli(["merge", "--model", str(adapters), "--out", str(merged)], capsys)
    assert code == 0, err
    classify = pipeline("image-classification", model=str(merged))
    image = Image.fromarray((torch.rand(28, 28) * 255).to(torch.uint8).numpy(), mode="L").convert("RGB")
    labels = {p["label"] for p in classify(image, top_k=5)}
    assert labels == set(json.loads((adapters / "config.json").read_text())["id2label"].values())
