"""The model-zoo conformance matrix (family x task x strategy) and the support table made from it.

Each cell is a tiny random model of a family, built offline from its config, trained a few real
AdamW steps through the param groups training builds; what moved is compared weight by weight
(`hf_finetune.conformance`). The layout rules themselves are checked independently in
test_layers.py; here every family must either train exactly what its strategy says or refuse in
one line, and docs/support.md must say what these tests saw.
"""

from __future__ import annotations

import pytest
from torch import nn

from hf_finetune.analysis import conformance
from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import BACKBONE, EMBEDDINGS, HEAD, discover_blocks
from hf_finetune.recipes import config_from_dict
from hf_finetune.strategies.plan import TransferPlan, resolve_strategies

CELLS = conformance.cells()


@pytest.mark.parametrize("key", CELLS, ids=["-".join(k) for k in CELLS])
def test_cell_trains_exactly_what_the_strategy_says_or_refuses(key):
    cell = conformance.run_cell(*key)
    expected_refusal = conformance.REFUSED.get(key)
    if expected_refusal:
        assert cell.refused is not None and expected_refusal in cell.refused
        assert "\n" not in cell.refused
        return
    assert cell.refused is None
    assert cell.must_move, "the strategy trains nothing the loss reaches"
    assert cell.must_move - cell.moved == set(), "trained weights that did not move"
    assert cell.moved - cell.trained == set(), "weights outside the strategy's set changed"


def test_every_family_the_issue_lists_is_in_the_matrix():
    text = {f.model_type for f in conformance.FAMILIES if "text-classification" in f.tasks}
    tokens = {f.model_type for f in conformance.FAMILIES if "token-classification" in f.tasks}
    images = {f.model_type for f in conformance.FAMILIES if "image-classification" in f.tasks}
    listed_text = set(
        "bert roberta xlm-roberta distilbert deberta deberta-v2 electra albert mpnet modernbert camembert "
        "longformer big_bird funnel mobilebert xlnet".split()
    )
    listed_images = set(
        "vit deit beit data2vec-vision dinov2 swin swinv2 convnext convnextv2 resnet regnet efficientnet "
        "mobilenet_v2 mobilevit levit poolformer".split()
    )
    assert text == tokens == listed_text
    assert images == listed_images


def test_support_table_in_docs_matches_the_matrix():
    """Regenerate with `python -m hf_finetune.analysis.conformance --write` after changing the matrix."""
    table = conformance.support_table([conformance.run_cell(*key) for key in CELLS])
    assert "FAILS" not in table
    committed = (conformance.REPO_ROOT / conformance.DOCS_TABLE).read_text(encoding="utf-8")
    assert committed == table


@pytest.mark.parametrize(
    "family, blocks",
    # Staged models count the layers inside their stages: depths [1, 2] give 3 blocks, not 2 stages.
    [("convnext", 3), ("resnet", 3), ("swin", 3), ("poolformer", 3), ("funnel", 2), ("albert", 1), ("mpnet", 2)],
)
def test_staged_models_are_counted_by_layer(family, blocks):
    task = conformance.BY_TYPE[family].tasks[0]
    assert discover_blocks(conformance.build_model(family, task)).num_blocks == blocks


@pytest.mark.parametrize(
    "family, task, name",
    [
        ("mpnet", "text-classification", "mpnet.encoder.relative_attention_bias.weight"),
        ("deberta-v2", "text-classification", "deberta.encoder.rel_embeddings.weight"),
        ("deberta-v2", "text-classification", "deberta.encoder.LayerNorm.weight"),
        ("xlnet", "text-classification", "transformer.mask_emb"),
        ("beit", "image-classification", "beit.embeddings.mask_token"),
        ("beit", "image-classification", "beit.shared_position_bias.relative_position_bias_table"),
        ("resnet", "image-classification", "resnet.embedder.embedder.convolution.weight"),
        ("mobilevit", "image-classification", "mobilevit.conv_stem.convolution.weight"),
    ],
)
def test_shared_tables_and_stems_live_in_embeddings(family, task, name):
    assert discover_blocks(conformance.build_model(family, task)).block_of(name) == EMBEDDINGS


@pytest.mark.parametrize(
    "family, name",
    [
        ("efficientnet", "efficientnet.encoder.top_conv.weight"),
        ("mobilenet_v2", "mobilenet_v2.conv_1x1.convolution.weight"),
    ],
)
def test_top_convolutions_share_the_top_block(family, name):
    layout = discover_blocks(conformance.build_model(family, "image-classification"))
    assert layout.block_of(name) == layout.names[-2]


def test_poolformer_downsampling_joins_the_stage_it_starts():
    layout = discover_blocks(conformance.build_model("poolformer", "image-classification"))
    assert layout.block_of("poolformer.encoder.patch_embeddings.0.projection.weight") == EMBEDDINGS
    # Stage 1 (depth 2) starts at block.1; its downsampling runs right before that layer.
    assert layout.block_of("poolformer.encoder.patch_embeddings.1.projection.weight") == "block.1"


def unreadable_bert() -> nn.Module:
    """A BERT whose two layers share one weight (as ALBERT-like sharing would): no single depth for it."""
    model = conformance.build_model("bert", "text-classification")
    layers = model.bert.encoder.layer
    layers[1].output.dense.weight = layers[0].output.dense.weight
    return model


def plan_for(model, strategy: str) -> TransferPlan:
    cfg = config_from_dict({"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy})
    strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
    for s in strategies:
        model = s.prepare_model(model, ["classifier.weight", "classifier.bias"])
    return TransferPlan(strategies, model, ["classifier.weight", "classifier.bias"], distributed=False)


def test_an_unreadable_layout_is_one_backbone_block_not_an_error():
    layout = discover_blocks(unreadable_bert())
    assert layout.unreadable and "shared by block.0 and block.1" in layout.unreadable
    assert layout.names == [EMBEDDINGS, BACKBONE, HEAD]
    assert [n for n, _ in layout.params[HEAD]] == ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("strategy", ["full", "lora", "ia3", "scratch", "linear_probe"])
def test_strategies_without_depth_train_an_unreadable_layout(strategy):
    model = unreadable_bert()
    plan = plan_for(model, strategy)
    groups = plan.param_groups(1e-3, 0.0, set())
    assert sum(p.numel() for g in groups for p in g["params"] if g["lr"] > 0) > 0
    trained = {id(p) for g in groups if g["lr"] > 0 for p in g["params"]}
    head = {id(p) for _, p in plan.layout.params[HEAD]}
    if strategy == "linear_probe":
        assert trained == head


@pytest.mark.parametrize("strategy", ["freeze_bottom", "gradual_unfreeze", "llrd"])
def test_depth_strategies_refuse_an_unreadable_layout_in_one_line(strategy):
    with pytest.raises(UserError) as refusal:
        plan_for(unreadable_bert(), strategy)
    message = str(refusal.value)
    assert "\n" not in message
    assert f"strategy {strategy} needs the depth" in message and "bert models" in message
    assert "shared by block.0 and block.1" in message and "FAMILY_STACKS" in message


def test_linear_probe_refuses_a_model_without_head():
    from transformers import AutoConfig, AutoModel

    bare = AutoModel.from_config(AutoConfig.for_model("bert", **conformance.BY_TYPE["bert"].config))
    with pytest.raises(UserError, match="linear_probe trains only the task head"):
        plan_for(bare, "linear_probe")


def test_lora_on_a_cnn_adapts_its_convolutions():
    model = conformance.build_model("resnet", "image-classification")
    plan = plan_for(model, "lora")
    wrapped = plan.layout.params[plan.layout.names[1]]
    assert any(".lora_A." in name and "convolution" in name for name, _ in wrapped)
