"""Every strategy on every backbone family: which weights move, which stay bit-identical.

Table-driven (strategy x backbone) on tiny random models, trained for a few real
optimizer steps with the suite's own `StrategyTrainer` (trl's clone-train-compare idiom).
The expected sets are stated in block terms, independently of how the plan computes them.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import BY_TYPE, build
from transformers import TrainingArguments

from hf_finetune.engine.trainer import StrategyTrainer
from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import EMBEDDINGS, HEAD
from hf_finetune.recipes import config_from_dict
from hf_finetune.strategies.plan import TransferPlan, resolve_strategies

BACKBONES = ["bert", "distilbert", "roberta", "vit", "deit", "swin"]
NEW_KEYS = ["classifier.weight", "classifier.bias"]
STEPS = 3


def make_plan(model_type: str, strategy: str, distributed: bool = False, **options):
    model = build(BY_TYPE[model_type])
    cfg = config_from_dict({"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy, **options})
    strategies = [cls(cfg) for cls in resolve_strategies(cfg.strategy.strategy_names)]
    for strategy_ in strategies:
        model = strategy_.prepare_model(model, NEW_KEYS)
    return model, TransferPlan(strategies, model, NEW_KEYS, distributed=distributed)


def examples(model_type: str, n: int = 12) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (n,), generator=generator)
    if BY_TYPE[model_type].auto.__name__.endswith("ImageClassification"):
        pixels = torch.randn(n, 3, 32, 32, generator=generator)
        return [{"pixel_values": pixels[i], "labels": labels[i]} for i in range(n)]
    ids = torch.randint(1, 99, (n, 8), generator=generator)
    return [
        {"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": labels[i]} for i in range(n)
    ]


def trainer_for(model, plan, model_type, tmp_path, **args) -> StrategyTrainer:
    defaults = dict(
        output_dir=str(tmp_path), max_steps=STEPS, learning_rate=1e-2, per_device_train_batch_size=4,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=0,
    )  # fmt: skip
    args = TrainingArguments(**{**defaults, **args})
    return StrategyTrainer(model=model, plan=plan, args=args, train_dataset=examples(model_type))


def train_and_diff(model, plan, model_type, tmp_path) -> set[str]:
    """Names of the parameters that changed (by any bit) during STEPS optimizer steps."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer_for(model, plan, model_type, tmp_path).train()
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


def in_blocks(plan, *blocks) -> set[str]:
    return {name for block in blocks for name, _ in plan.layout.params[block]}


def peft_trained(model, marker: str) -> set[str]:
    return {n for n, _ in model.named_parameters() if marker in n or "modules_to_save" in n}


def top_block(plan) -> str:
    return plan.layout.names[-2]


# strategy, options, expected changed parameter names given (model, plan)
TABLE = [
    ("full", {}, lambda m, plan: in_blocks(plan, *plan.layout.names)),
    ("linear_probe", {}, lambda m, plan: in_blocks(plan, HEAD)),
    ("freeze_bottom", {"freeze_num_layers": 1}, lambda m, plan: in_blocks(plan, *plan.layout.names[2:])),
    (
        "gradual_unfreeze",
        {"gradual_unfreeze_every_steps": 2},  # step 0-1: head only; step 2: the top block opens
        lambda m, plan: in_blocks(plan, HEAD, top_block(plan)),
    ),
    ("llrd", {"llrd_decay": 0.5}, lambda m, plan: in_blocks(plan, *plan.layout.names)),
    ("l2sp", {}, lambda m, plan: in_blocks(plan, *plan.layout.names)),
    ("lp_ft", {}, lambda m, plan: in_blocks(plan, *plan.layout.names)),  # phase 2: every weight
    ("linear_probe", {"linear_probe_solver": "sgd"}, lambda m, plan: in_blocks(plan, HEAD)),
    ("scratch", {}, lambda m, plan: in_blocks(plan, *plan.layout.names)),
    ("lora", {}, lambda m, plan: peft_trained(m, "lora_")),
    ("lora", {"lora_use_dora": True}, lambda m, plan: peft_trained(m, "lora_")),
    ("ia3", {}, lambda m, plan: peft_trained(m, "ia3_")),
    ("freeze_bottom+llrd", {"freeze_num_layers": 1}, lambda m, plan: in_blocks(plan, *plan.layout.names[2:])),
    ("lora+llrd", {"llrd_head_lr_multiplier": 10}, lambda m, plan: peft_trained(m, "lora_")),
    # Every weight, and the domain classifier it hangs on the head while training (found on every family).
    ("dann", {"dann_target_dataset": "unused"}, lambda m, plan: in_blocks(plan, *plan.layout.names)),
]


@pytest.mark.parametrize("model_type", BACKBONES)
@pytest.mark.parametrize(
    "strategy,options,expected", TABLE, ids=[f"{s}{'-dora' if o.get('lora_use_dora') else ''}" for s, o, _ in TABLE]
)
def test_exactly_the_expected_weights_change(model_type, strategy, options, expected, tmp_path):
    model, plan = make_plan(model_type, strategy, **options)
    changed = train_and_diff(model, plan, model_type, tmp_path)
    want = expected(model, plan)
    assert want, "the expected set must not be empty"
    assert changed == want, f"unexpected: {sorted(changed - want)[:5]}; unchanged: {sorted(want - changed)[:5]}"


@pytest.mark.parametrize("model_type", ["bert", "vit"])
def test_scratch_reinitialises_every_weight_matrix(model_type):
    pretrained = build(BY_TYPE[model_type])
    model, _ = make_plan(model_type, "scratch")
    assert type(model) is type(pretrained)
    for (name, before), (_, after) in zip(pretrained.named_parameters(), model.named_parameters(), strict=True):
        if before.dim() == 2 and before.std() > 0:
            assert not torch.equal(before, after), name


def group_lrs(optimizer) -> dict[str, set[float]]:
    out: dict[str, set[float]] = {}
    for group in optimizer.param_groups:
        out.setdefault(group["block"], set()).add(group["lr"])
    return out


def test_llrd_stores_the_final_lr_in_each_group(tmp_path):
    model, plan = make_plan("bert", "llrd", llrd_decay=0.5, llrd_head_lr_multiplier=10)
    trainer = trainer_for(model, plan, "bert", tmp_path, learning_rate=1e-3, weight_decay=0.1)
    optimizer = trainer.create_optimizer()
    assert group_lrs(optimizer) == {
        EMBEDDINGS: {1e-3 * 0.5**3},
        "block.0": {1e-3 * 0.5**2},
        "block.1": {1e-3 * 0.5},
        HEAD: {1e-3 * 10},
    }
    # Biases and LayerNorm weights go without weight decay, as in plain Trainer.
    no_decay = [p for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]]
    decay = [p for g in optimizer.param_groups if g["weight_decay"] == 0.1 for p in g["params"]]
    assert no_decay and all(p.dim() == 1 for p in no_decay)
    assert decay and all(p.dim() == 2 for p in decay)


@pytest.mark.parametrize("distributed", [False, True], ids=["one process", "ddp"])
def test_frozen_blocks_by_process_count(distributed, tmp_path):
    """One process: frozen weights leave the optimizer. DDP: they stay registered, in LR-0 groups without decay."""
    model, plan = make_plan("bert", "freeze_bottom+llrd", distributed=distributed, freeze_num_layers=1)
    optimizer = trainer_for(model, plan, "bert", tmp_path, learning_rate=1e-3, weight_decay=0.1).create_optimizer()
    lrs = group_lrs(optimizer)
    frozen = in_blocks(plan, EMBEDDINGS, "block.0")
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    if distributed:
        assert lrs[EMBEDDINGS] == lrs["block.0"] == {0.0}
        assert all(grads[name] for name in frozen)
        assert all(g["weight_decay"] == 0 for g in optimizer.param_groups if g["lr"] == 0)
    else:
        assert EMBEDDINGS not in lrs and "block.0" not in lrs
        assert not any(grads[name] for name in frozen)
    assert lrs["block.1"] == {1e-3 * 0.9}  # llrd default decay 0.9: the top block is one step down


def open_blocks_per_step(trainer, steps: int) -> list[set[str]]:
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    opened = []
    for _ in range(steps):
        opened.append({g["block"] for g in trainer.optimizer.param_groups if g["lr"] > 0})
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return opened


def test_gradual_unfreeze_opens_one_block_per_stage_top_down(tmp_path):
    model, plan = make_plan("bert", "gradual_unfreeze", gradual_unfreeze_every_steps=2)
    opened = open_blocks_per_step(trainer_for(model, plan, "bert", tmp_path, learning_rate=1e-3), 8)
    stage = [{HEAD}, {"block.1", HEAD}, {"block.0", "block.1", HEAD}, {EMBEDDINGS, "block.0", "block.1", HEAD}]
    assert opened == [stage[0], stage[0], stage[1], stage[1], stage[2], stage[2], stage[3], stage[3]]


def test_gradual_unfreeze_by_epochs_counts_optimizer_steps(tmp_path):
    """12 examples / batch 4 / 1 process = 3 optimizer steps per epoch; two blocks per stage."""
    model, plan = make_plan(
        "bert", "gradual_unfreeze", gradual_unfreeze_every_epochs=1, gradual_unfreeze_blocks_per_stage=2
    )
    trainer = trainer_for(model, plan, "bert", tmp_path, learning_rate=1e-3)
    assert trainer.steps_per_epoch() == 3
    opened = open_blocks_per_step(trainer, 7)
    assert opened[:3] == [{HEAD}] * 3
    assert opened[3:6] == [{"block.0", "block.1", HEAD}] * 3
    assert opened[6] == {EMBEDDINGS, "block.0", "block.1", HEAD}


def test_l2sp_penalty_matches_its_formula():
    alpha, beta = 0.3, 0.2
    model, plan = make_plan("bert", "l2sp", l2sp_alpha=alpha, l2sp_beta=0.0)
    assert plan.extra_loss().item() == 0.0  # at the start every weight sits on its pretrained value
    weight = dict(model.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    with torch.no_grad():
        weight.add_(0.1)
    assert plan.extra_loss().item() == pytest.approx(alpha / 2 * 0.1**2 * weight.numel(), rel=1e-5)

    model, plan = make_plan("bert", "l2sp", l2sp_alpha=alpha, l2sp_beta=beta)
    head = [p for _, p in plan.layout.params[HEAD]]
    expected = beta / 2 * sum(float(p.pow(2).sum()) for p in head)
    assert plan.extra_loss().item() == pytest.approx(expected, rel=1e-5)


def test_l2sp_penalty_is_added_to_the_training_loss_only(tmp_path):
    model, plan = make_plan("bert", "l2sp", l2sp_alpha=0.0, l2sp_beta=1000.0)
    trainer = trainer_for(model, plan, "bert", tmp_path)
    batch = trainer.data_collator(examples("bert", 4))
    model.train()
    with_penalty = trainer.compute_loss(model, dict(batch)).item()
    model.eval()
    without = trainer.compute_loss(model, dict(batch)).item()
    assert with_penalty - without > 1.0  # beta 1000 on the head dominates


@pytest.mark.parametrize(
    "strategy,message",
    [
        ("lora+ia3", "choose one of"),
        ("full+linear_probe", "choose one of"),
        ("linear_probe+freeze_bottom", "already frozen"),
        ("scratch+l2sp", "no pretrained weights"),
        ("lora+l2sp", "adapters keep the pretrained weights frozen"),
        ("llrd+llrd", "twice"),
        ("nonsense", "unknown strategy"),
    ],
)
def test_refused_combinations_say_why(strategy, message):
    with pytest.raises(UserError, match=message):
        config_from_dict({"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy})


@pytest.mark.parametrize(
    "strategy,options,message",
    [
        ("freeze_bottom", {"freeze_num_layers": 3}, "between 0 and 2"),
        ("llrd", {"llrd_decay": 1.5}, "llrd_decay"),
        ("gradual_unfreeze", {"gradual_unfreeze_every_steps": 0}, "positive"),
    ],
)
def test_bad_strategy_options_are_user_errors(strategy, options, message):
    with pytest.raises(UserError, match=message):
        make_plan("bert", strategy, **options)


@pytest.mark.parametrize(
    "strategy,expected_lr",
    [("full", 2e-5), ("linear_probe", 1e-3), ("scratch", 2e-4), ("lora+llrd", 5e-4), ("lp_ft", 2e-5)],
)
def test_default_learning_rate_comes_from_the_strategy(strategy, expected_lr):
    cfg = config_from_dict({"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy})
    assert cfg.training.learning_rate == expected_lr
    explicit = config_from_dict(
        {"model_name_or_path": "tiny", "train_file": "x.csv", "strategy": strategy, "learning_rate": 3e-5}
    )
    assert explicit.training.learning_rate == 3e-5


def test_summary_counts_what_trains():
    model, plan = make_plan("vit", "linear_probe")
    rows = plan.summary(1e-3)
    assert [r["block"] for r in rows] == [EMBEDDINGS, "block.0", "block.1", HEAD]
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert [r["trainable"] for r in rows] == [0, 0, 0, 32 * 3 + 3]
    assert [r["lr"] for r in rows] == [0.0, 0.0, 0.0, 1e-3]
