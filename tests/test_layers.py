"""Block layout on tiny random models of each family, plus the real packaged MiniLM.

The expected layer paths (in `tiny_models.CASES`) are written out by hand on purpose: `discover_blocks` must
find them from structure alone, so the test is an independent check of its answer.
"""

from __future__ import annotations

import functools

import pytest
import torch
from tiny_models import BY_TYPE, CASES, TEXT, build
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
)

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import BACKBONE, EMBEDDINGS, FAMILY_STACKS, HEAD, discover_blocks

cases = pytest.mark.parametrize("case", CASES, ids=[c.model_type for c in CASES])


@functools.cache
def cached(model_type: str) -> nn.Module:
    """Shared by the read-only tests; tests that change a model build their own."""
    return build(BY_TYPE[model_type])


def block_names(layout, block: str) -> list[str]:
    return [name for name, _ in layout.params[block]]


def test_every_family_with_listed_stacks_is_tested():
    """Funnel is in the conformance matrix (test_conformance.py)."""
    assert set(FAMILY_STACKS) <= set(BY_TYPE) | {"funnel"}


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
    "attach, name, block",
    [
        # The base model's own parameters come first in named_parameters(): input side, like a stem.
        (lambda base: setattr(base, "mystery_scale", nn.Parameter(torch.ones(1))), "bert.mystery_scale", EMBEDDINGS),
        # Registered after the pooler, so after the layers: it only sees the top layer's output.
        (lambda base: setattr(base, "adapter", nn.Linear(2, 2)), "bert.adapter.weight", "block.1"),
    ],
    ids=["top-level", "after-layers"],
)
def test_parameters_outside_the_layers_go_by_position(attach, name, block):
    model = build(BY_TYPE["bert"])
    attach(model.base_model)
    assert discover_blocks(model).block_of(name) == block


def test_weight_shared_by_two_layers_makes_the_layout_unreadable():
    model = build(BY_TYPE["bert"])
    stack = model.bert.encoder.layer
    stack[1].output.dense.weight = stack[0].output.dense.weight  # one weight in two layers
    layout = discover_blocks(model)
    assert layout.names == [EMBEDDINGS, BACKBONE, HEAD]
    assert "shared by block.0 and block.1" in layout.unreadable
    with pytest.raises(UserError, match="strategy llrd needs the depth of each layer.*bert models"):
        layout.require_depth("llrd")


def test_unknown_names_are_user_errors():
    layout = discover_blocks(cached("bert"))
    with pytest.raises(UserError, match="not a parameter"):
        layout.block_of("bert.nope.weight")
    with pytest.raises(UserError, match="unknown block"):
        layout.depth_index("block.99")
