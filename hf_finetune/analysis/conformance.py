"""The model-zoo conformance matrix: family x task x strategy, checked by training, not by listing.

Each cell builds a tiny random model of one family offline (`AutoConfig.for_model` +
`from_config`: same module tree as the Hub checkpoints, a few thousand weights), applies one
strategy through the code path training uses (`resolve_strategies`, `prepare_model`,
`TransferPlan.param_groups`, `TransferPlan.gate_scheduler`), takes a few real AdamW steps, and
compares every weight with its starting value: exactly the weights the strategy trains must
move and every other one must stay bit-identical. A cell that cannot be supported must refuse
in one line (`UserError`) before any step.

`docs/support.md` is written from these results (`python -m hf_finetune.analysis.conformance --write`),
and the tests check that the committed table equals the one their own run produces, so the
table cannot claim a cell the tests did not pass.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.recipes import config_from_dict
from hf_finetune.strategies.plan import TransferPlan, resolve_strategies

TASK_CLASSES = {
    "text-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "image-classification": AutoModelForImageClassification,
}
STRATEGIES = ("full", "linear_probe", "freeze_bottom", "gradual_unfreeze", "llrd", "lora")
# Options chosen so each strategy's effect is visible in STEPS steps: freeze one layer, open the
# top layer at step 2 (so steps 0-1 train the head only), decay fast enough to order every group.
OPTIONS = {
    "freeze_bottom": {"freeze_num_layers": 1},
    "gradual_unfreeze": {"gradual_unfreeze_every_steps": 2},
    "llrd": {"llrd_decay": 0.5},
    "lora": {"lora_r": 2, "lora_alpha": 4, "lora_dropout": 0.0},
}
STEPS, BATCH, SEQUENCE, IMAGE, NUM_LABELS = 3, 4, 8, 32, 3
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_TABLE = Path("docs/support.md")  # relative to REPO_ROOT

_TEXT = dict(hidden_size=32, num_attention_heads=2, intermediate_size=37, vocab_size=99, max_position_embeddings=64)
_TEXT2 = dict(_TEXT, num_hidden_layers=2)
_VIT = dict(
    hidden_size=32, num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=4, num_hidden_layers=2
)
_STAGES = dict(hidden_sizes=[8, 16], depths=[1, 2])
_SWIN = dict(embed_dim=16, depths=[1, 2], num_heads=[1, 2], image_size=32, patch_size=4, window_size=4)
_BOTH_TEXT = ("text-classification", "token-classification")
_IMAGE = ("image-classification",)


@dataclass(frozen=True)
class Family:
    model_type: str
    config: dict = field(hash=False)
    tasks: tuple[str, ...]


# Tiny configs: the smallest settings that keep each family's structure (stages, shared tables, stems).
FAMILIES = [
    Family("bert", _TEXT2, _BOTH_TEXT),
    Family("roberta", _TEXT2, _BOTH_TEXT),
    Family("xlm-roberta", _TEXT2, _BOTH_TEXT),
    Family("camembert", _TEXT2, _BOTH_TEXT),
    Family("distilbert", dict(dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=99), _BOTH_TEXT),
    Family("deberta", dict(_TEXT2, relative_attention=True, max_relative_positions=16), _BOTH_TEXT),
    Family(
        "deberta-v2",
        dict(
            _TEXT2, relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm"
        ),
        _BOTH_TEXT,
    ),
    Family("electra", dict(_TEXT2, embedding_size=16), _BOTH_TEXT),
    # ALBERT shares one layer's weights across all its layers: one block, whatever num_hidden_layers says.
    Family("albert", dict(_TEXT2, embedding_size=16), _BOTH_TEXT),
    Family("mpnet", _TEXT2, _BOTH_TEXT),
    Family(
        "modernbert",
        dict(
            _TEXT2,
            global_attn_every_n_layers=2,
            local_attention=8,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            cls_token_id=1,
            sep_token_id=2,
        ),
        _BOTH_TEXT,
    ),  # fmt: skip
    Family("longformer", dict(_TEXT2, attention_window=4), _BOTH_TEXT),
    Family("big_bird", dict(_TEXT2, attention_type="original_full"), _BOTH_TEXT),
    Family(
        "funnel",
        dict(d_model=32, n_head=2, d_head=16, d_inner=37, vocab_size=99, block_sizes=[1, 1], num_decoder_layers=1),
        _BOTH_TEXT,
    ),  # fmt: skip
    Family(
        "mobilebert",
        dict(_TEXT2, embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16, num_feedforward_networks=2),
        _BOTH_TEXT,
    ),
    Family("xlnet", dict(d_model=32, n_head=2, d_inner=37, vocab_size=99, n_layer=2), _BOTH_TEXT),
    Family("vit", _VIT, _IMAGE),
    # transformers maps deit and levit to two head classes and picks by `architectures`.
    Family("deit", dict(_VIT, architectures=["DeiTForImageClassification"]), _IMAGE),
    Family("beit", dict(_VIT, use_shared_relative_position_bias=True, use_mask_token=True), _IMAGE),
    Family("data2vec-vision", dict(_VIT, use_shared_relative_position_bias=True), _IMAGE),
    Family("dinov2", _VIT, _IMAGE),
    Family("swin", _SWIN, _IMAGE),
    Family("swinv2", _SWIN, _IMAGE),
    Family("convnext", dict(_STAGES, num_stages=2), _IMAGE),
    Family("convnextv2", dict(_STAGES, num_stages=2), _IMAGE),
    Family("resnet", dict(_STAGES, embedding_size=8), _IMAGE),
    Family("regnet", dict(_STAGES, embedding_size=8, groups_width=8), _IMAGE),
    Family("efficientnet", dict(image_size=32, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128), _IMAGE),
    Family("mobilenet_v2", dict(depth_multiplier=0.1, image_size=32), _IMAGE),
    Family(
        "mobilevit",
        dict(
            image_size=32,
            patch_size=2,
            hidden_sizes=[16, 16, 16],
            neck_hidden_sizes=[8, 8, 8, 8, 8, 8, 16],
            num_attention_heads=2,
        ),
        _IMAGE,
    ),  # fmt: skip
    Family(
        "levit",
        dict(
            image_size=32,
            hidden_sizes=[16, 32, 48],
            num_attention_heads=[1, 2, 3],
            depths=[1, 1, 1],
            key_dim=[8, 8, 8],
            architectures=["LevitForImageClassification"],
        ),
        _IMAGE,
    ),  # fmt: skip
    Family(
        "poolformer", dict(_STAGES, num_encoder_blocks=2, patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1]), _IMAGE
    ),
]
BY_TYPE = {f.model_type: f for f in FAMILIES}
# Cells that must refuse, with a phrase their one-line error contains. Every family above has a
# readable layout; the refusal of depth strategies is tested on a model built to be unreadable.
REFUSED: dict[tuple[str, str, str], str] = {
    ("mobilenet_v2", "image-classification", "lora"): "lora cannot adapt mobilenet_v2 models with tf_padding",
}


@dataclass
class Cell:
    family: str
    task: str
    strategy: str
    refused: str | None = None  # the one-line error, when the strategy refused
    blocks: int = 0
    trained: set[str] = field(default_factory=set)  # what the strategy trains, stated in block terms
    must_move: set[str] = field(default_factory=set)  # trained weights with a clear gradient
    moved: set[str] = field(default_factory=set)  # weights that are no longer bit-identical

    @property
    def passed(self) -> bool:
        """Every trained weight with a gradient moved, and nothing else changed by a single bit."""
        return self.refused is None and bool(self.must_move) and self.must_move <= self.moved <= self.trained


def cells() -> list[tuple[str, str, str]]:
    return [(f.model_type, task, s) for f in FAMILIES for task in f.tasks for s in STRATEGIES]


def build_model(model_type: str, task: str):
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, num_labels=NUM_LABELS, **BY_TYPE[model_type].config)
    return TASK_CLASSES[task].from_config(config)


def batch(task: str) -> dict:
    generator = torch.Generator().manual_seed(0)
    if task == "image-classification":
        return {
            "pixel_values": torch.randn(BATCH, 3, IMAGE, IMAGE, generator=generator),
            "labels": torch.randint(0, NUM_LABELS, (BATCH,), generator=generator),
        }
    shape = (BATCH, SEQUENCE) if task == "token-classification" else (BATCH,)
    return {
        "input_ids": torch.randint(3, 99, (BATCH, SEQUENCE), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQUENCE, dtype=torch.long),
        "labels": torch.randint(0, NUM_LABELS, shape, generator=generator),
    }


def without_randomness(model) -> None:
    """Training mode (BatchNorm uses batch statistics, LeViT recomputes its attention biases) with
    dropout and drop-path off, so every step reaches the same weights."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "drop_prob"):  # the DropPath of Swin, BEiT, ConvNeXt...
            module.drop_prob = 0.0


def reached_weights(model, inputs: dict) -> set[str]:
    """Weights whose gradient from the task loss is clearly non-zero; gradients are cleared afterwards.
    Some weights get none (XLNet's `mask_emb` is unused without a permutation mask) or only rounding
    noise (a bias right before a normalisation: ~1e-14 in MobileBERT), and AdamW may then move them
    by less than float32 can show. Above 1e-6, AdamW's first step is ~lr: they must move."""
    model(**inputs).loss.backward()
    reached = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().max() > 1e-6}
    model.zero_grad(set_to_none=True)
    return reached


@functools.cache
def _strategy_config(strategy: str):
    values = {"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy, **OPTIONS.get(strategy, {})}
    return config_from_dict(values)


@functools.cache
def run_cell(model_type: str, task: str, strategy: str) -> Cell:
    """Apply one strategy to one tiny model, train STEPS steps, record what moved."""
    cell = Cell(model_type, task, strategy)
    model = build_model(model_type, task)
    without_randomness(model)
    inputs = batch(task)
    reached = reached_weights(model, inputs)
    new_keys = [name for name, _ in model.named_parameters() if not name.startswith(model.base_model_prefix + ".")]
    cfg = _strategy_config(strategy)
    try:
        strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
        for s in strategies:
            model = s.prepare_model(model, new_keys)
        plan = TransferPlan(strategies, model, new_keys, distributed=False)
    except UserError as refusal:
        cell.refused = str(refusal)
        return cell
    cell.blocks = plan.layout.num_blocks
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model, plan, inputs)
    cell.moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    cell.trained = _trained(model, plan, strategy)
    cell.must_move = cell.trained & _reached_after_wrapping(model, reached)
    return cell


def _train(model, plan: TransferPlan, inputs: dict) -> None:
    """STEPS AdamW steps with the param groups and LR gating training builds (`StrategyTrainer`)."""
    from transformers import get_scheduler

    decay_ids = {id(p) for p in model.parameters()}
    optimizer = torch.optim.AdamW(plan.param_groups(1e-2, 0.0, decay_ids), lr=1e-2)
    scheduler = get_scheduler("constant", optimizer)
    if plan.scheduled:
        scheduler = plan.gate_scheduler(scheduler, steps_per_epoch=1.0)
    for _ in range(STEPS):
        model(**inputs).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def _trained(model, plan: TransferPlan, strategy: str) -> set[str]:
    """The weights the strategy trains, stated in block terms independently of the plan's LR factors."""
    layout = plan.layout
    if strategy == "lora":  # adapters and the trained copy of the head; the base weights stay frozen
        return {n for n, _ in model.named_parameters() if ".lora_" in n or ".modules_to_save." in n}
    blocks = {
        "full": layout.names,
        "llrd": layout.names,
        "linear_probe": [HEAD],
        "freeze_bottom": layout.names[2:],  # all but embeddings and block.0
        "gradual_unfreeze": [layout.names[-2], HEAD],  # the top block opens at step 2
    }[strategy]
    return {n for block in blocks for n, _ in layout.params[block]}


def _reached_after_wrapping(model, reached: set[str]) -> set[str]:
    """`reached` in the names of the model as trained: a LoRA adapter or a head copy is reached when the
    weight it adapts or copies was (peft prefixes `base_model.model.` and inserts `.lora_A.default`)."""
    out = set()
    for name, _ in model.named_parameters():
        plain = name.removeprefix("base_model.model.")
        if ".lora_" in plain:
            plain = plain.split(".lora_", 1)[0] + ".weight"
        plain = plain.replace(".modules_to_save.default.", ".").replace(".base_layer.", ".")
        if plain in reached:
            out.add(name)
    return out


def support_table(results: list[Cell]) -> str:
    """docs/support.md: one table per task, a row per family, a column per strategy."""
    lines = [
        "# Supported model families",
        "",
        "Generated by `python -m hf_finetune.analysis.conformance --write` from the conformance matrix that",
        "`tests/test_conformance.py` runs (a tiny random model of each family, a few real optimizer steps",
        "per strategy, every weight compared); a test fails when this page and the matrix disagree.",
        "`yes` means: the weights the strategy trains moved, and every other weight stayed bit-identical.",
        "`blocks` is the number of layers the depth-based strategies count for the tiny config",
        "(staged models count the layers inside their stages; see `hf_finetune/modeling/layers.py`).",
        "LoRA outputs are adapter folders: `hf-finetune merge` turns them into a plain model for `pipeline()`.",
        "timm models (`TimmWrapperForImageClassification`) are not in the matrix: timm needs a torchvision",
        "that imports with this project's CPU torch (see docs/model_zoo.md).",
    ]
    for task in TASK_CLASSES:
        rows = [c for c in results if c.task == task]
        lines += ["", f"## {task}", "", "| family | blocks | " + " | ".join(STRATEGIES) + " |"]
        lines.append("|---|---:|" + "---|" * len(STRATEGIES))
        for family in dict.fromkeys(c.family for c in rows):
            row = {c.strategy: c for c in rows if c.family == family}
            blocks = max(c.blocks for c in row.values())
            marks = [_mark(row[s]) for s in STRATEGIES]
            lines.append(f"| {family} | {blocks} | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


def _mark(cell: Cell) -> str:
    if cell.refused:
        return "refused: " + cell.refused.replace("|", "/")
    return "yes" if cell.passed else "FAILS"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the conformance matrix and print (or write) docs/support.md.")
    parser.add_argument("--write", action="store_true", help=f"write {DOCS_TABLE} instead of printing it")
    args = parser.parse_args(argv)
    table = support_table([run_cell(*key) for key in cells()])
    if args.write:
        (REPO_ROOT / DOCS_TABLE).parent.mkdir(exist_ok=True)
        (REPO_ROOT / DOCS_TABLE).write_text(table, encoding="utf-8")
    else:
        print(table)


if __name__ == "__main__":
    main()
