"""Tiny random models of each encoder family, built locally from configs (the Hub's tiny
test checkpoints are not reachable here). Shared by the layer and strategy tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

from hf_finetune.modeling.layers import EMBEDDINGS, HEAD

TEXT = dict(hidden_size=32, num_attention_heads=2, intermediate_size=37, vocab_size=99, max_position_embeddings=64)
VISION = dict(hidden_size=32, num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=4)
STAGED = dict(embed_dim=16, depths=[1, 2], num_heads=[1, 2], image_size=32, patch_size=4, window_size=4)


@dataclass(frozen=True)
class Case:
    model_type: str
    auto: type
    config: dict
    layer_prefixes: tuple[str, ...]  # one per transformer layer, bottom to top
    anchors: dict[str, str]  # parameter name -> the block it must land in


def _stacked(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}." for i in range(n))


# Stages of depths [1, 2]: the longest single ModuleList (2 stages, or stage 1's 2 layers)
# would give 2 blocks, so 3 proves that the stages were flattened.
def _staged(base: str) -> tuple[str, ...]:
    depths = enumerate(STAGED["depths"])
    return tuple(f"{base}.encoder.layers.{stage}.blocks.{i}." for stage, depth in depths for i in range(depth))


CASES = [
    Case(
        "bert",
        AutoModelForSequenceClassification,
        dict(TEXT, num_hidden_layers=2),
        _stacked("bert.encoder.layer", 2),
        {
            "bert.embeddings.word_embeddings.weight": EMBEDDINGS,
            "bert.embeddings.LayerNorm.weight": EMBEDDINGS,
            "bert.pooler.dense.weight": "block.1",
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "distilbert",
        AutoModelForSequenceClassification,
        dict(dim=32, n_layers=3, n_heads=2, hidden_dim=37, vocab_size=99, max_position_embeddings=64),
        _stacked("distilbert.transformer.layer", 3),
        {
            "distilbert.embeddings.word_embeddings.weight": EMBEDDINGS,
            "pre_classifier.weight": HEAD,
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "roberta",
        AutoModelForSequenceClassification,
        dict(TEXT, num_hidden_layers=4),
        _stacked("roberta.encoder.layer", 4),
        {
            "roberta.embeddings.word_embeddings.weight": EMBEDDINGS,
            "roberta.embeddings.position_embeddings.weight": EMBEDDINGS,
            "classifier.dense.weight": HEAD,
            "classifier.out_proj.weight": HEAD,
        },
    ),
    Case(
        "vit",
        AutoModelForImageClassification,
        dict(VISION, num_hidden_layers=2),
        _stacked("vit.layers", 2),
        {
            "vit.embeddings.patch_embeddings.projection.weight": EMBEDDINGS,
            "vit.embeddings.cls_token": EMBEDDINGS,
            "vit.layernorm.weight": "block.1",
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "deit",
        AutoModelForImageClassification,
        # transformers 5.23 maps deit to two head classes and picks by `architectures`,
        # failing when it is unset, as in a config built from scratch.
        dict(VISION, num_hidden_layers=3, architectures=["DeiTForImageClassification"]),
        _stacked("deit.layers", 3),
        {
            "deit.embeddings.patch_embeddings.projection.weight": EMBEDDINGS,
            "deit.embeddings.distillation_token": EMBEDDINGS,
            "deit.layernorm.weight": "block.2",
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "swin",
        AutoModelForImageClassification,
        STAGED,
        _staged("swin"),
        {
            "swin.embeddings.patch_embeddings.projection.weight": EMBEDDINGS,
            "swin.embeddings.norm.weight": EMBEDDINGS,
            "swin.encoder.layers.0.downsample.reduction.weight": "block.0",
            "swin.layernorm.weight": "block.2",
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "swinv2",
        AutoModelForImageClassification,
        STAGED,
        _staged("swinv2"),
        {
            "swinv2.embeddings.patch_embeddings.projection.weight": EMBEDDINGS,
            "swinv2.encoder.layers.0.downsample.reduction.weight": "block.0",
            "swinv2.layernorm.weight": "block.2",
            "classifier.weight": HEAD,
        },
    ),
    Case(
        "donut-swin",
        AutoModelForImageClassification,
        STAGED,
        _staged("donut"),
        {
            "donut.embeddings.patch_embeddings.projection.weight": EMBEDDINGS,
            "donut.encoder.layers.0.downsample.reduction.weight": "block.0",
            "classifier.weight": HEAD,
        },
    ),
]
BY_TYPE = {case.model_type: case for case in CASES}


def build(case: Case) -> nn.Module:
    torch.manual_seed(0)
    return case.auto.from_config(AutoConfig.for_model(case.model_type, num_labels=3, **case.config))
