"""Block layout on tiny random models of each family, plus the real packaged MiniLM.

The expected layer paths below are written out by hand on purpose: `discover_blocks` must
find them from structure alone, so the test is an independent check of its answer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
)

from hf_finetune.errors import UserError
from hf_finetune.layers import EMBEDDINGS, HEAD, STAGED_FAMILIES, discover_blocks

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
cases = pytest.mark.parametrize("case", CASES, ids=[c.model_type for c in CASES])


def build(case: Case) -> nn.Module:
    torch.manual_seed(0)
    return case.auto.from_config(AutoConfig.for_model(case.model_type, num_labels=3, **case.config))


@functools.cache
def cached(model_type: str) -> nn.Module:
    """Shared by the read-only tests; tests that change a model build their own."""
    return build(BY_TYPE[model_type])


def block_names(layout, block: str) -> list[str]:
    return [name for name, _ in layout.params[block]]


def test_every_staged_family_is_tested():
    assert set(STAGED_FAMILIES) <= set(BY_TYPE)


@cases
def test_one_block_per_configured_layer(case):
    layout = discover_blocks(cached(case.model_type))
    n = len(case.layer_prefixes)
    assert layout.num_blocks == n
    assert layout.names == [EMBEDDINGS, *(f"block.{i}" for i in range(n)), HEAD]


@cases
def test_blocks_run_bottom_to_top(case):
    model = cached(case.model_type)
    layout = discover_blocks(model)
    for i, prefix in enumerate(case.layer_prefixes):
        in_layer = [name for name, _ in model.named_parameters() if name.startswith(prefix)]
        assert in_layer, prefix
        assert {layout.block_of(name) for name in in_layer} == {f"block.{i}"}


@cases
def test_every_parameter_in_exactly_one_block_in_model_order(case):
    """Concatenated bottom to top, the blocks give back named_parameters() exactly: nothing
    lost, nothing twice, and each block a contiguous run in the model's own order."""
    model = cached(case.model_type)
    layout = discover_blocks(model)
    concatenated = [(name, id(p)) for block in layout.names for name, p in layout.params[block]]
    assert concatenated == [(name, id(p)) for name, p in model.named_parameters()]


@cases
def test_embeddings_tail_and_head_land_where_documented(case):
    model = cached(case.model_type)
    layout = discover_blocks(model)
    assert {name: layout.block_of(name) for name in case.anchors} == case.anchors
    outside_base = {n for n, _ in model.named_parameters() if not n.startswith(model.base_model_prefix + ".")}
    assert set(block_names(layout, HEAD)) == outside_base
    # Word embeddings for text, patch embeddings for vision.
    in_embeddings = {id(p) for _, p in layout.params[EMBEDDINGS]}
    input_embeddings = list(model.get_input_embeddings().parameters())
    assert input_embeddings and all(id(p) in in_embeddings for p in input_embeddings)


@cases
def test_depth_index_follows_names(case):
    layout = discover_blocks(cached(case.model_type))
    assert [layout.depth_index(block) for block in layout.names] == list(range(layout.num_blocks + 2))
    assert layout.depth_index(HEAD) == layout.num_blocks + 1


def test_packaged_minilm_has_six_blocks(minilm_dir):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=4)
    layout = discover_blocks(model)
    assert layout.num_blocks == 6
    assert layout.block_of("bert.embeddings.word_embeddings.weight") == EMBEDDINGS
    assert layout.block_of("bert.encoder.layer.5.output.dense.weight") == "block.5"
    assert block_names(layout, HEAD) == ["classifier.weight", "classifier.bias"]
    assert sum(len(layout.params[b]) for b in layout.names) == len(list(model.named_parameters()))


def test_bare_base_model_has_an_empty_head():
    model = AutoModel.from_config(AutoConfig.for_model("bert", num_hidden_layers=2, **TEXT))
    layout = discover_blocks(model)
    assert layout.num_blocks == 2
    assert layout.params[HEAD] == []
    assert layout.block_of("embeddings.word_embeddings.weight") == EMBEDDINGS


@pytest.mark.parametrize(
    "attach, name",
    [
        # The base model's own parameters come first in named_parameters(), before the embeddings.
        (lambda base: setattr(base, "mystery_scale", nn.Parameter(torch.ones(1))), "bert.mystery_scale"),
        # Registered after the pooler, so after the layers, but not a norm or pooler.
        (lambda base: setattr(base, "adapter", nn.Linear(2, 2)), "bert.adapter.weight"),
    ],
    ids=["top-level", "after-layers"],
)
def test_unmappable_parameter_is_named_in_the_error(attach, name):
    model = build(BY_TYPE["bert"])
    attach(model.base_model)
    with pytest.raises(UserError, match=f"'{name}'"):
        discover_blocks(model)


def test_unknown_names_are_user_errors():
    layout = discover_blocks(cached("bert"))
    with pytest.raises(UserError, match="not a parameter"):
        layout.block_of("bert.nope.weight")
    with pytest.raises(UserError, match="unknown block"):
        layout.depth_index("block.99")
