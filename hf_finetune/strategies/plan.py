"""Turn the chosen strategies into what the optimizer sees: one param group per block.

Every strategy speaks of blocks (`hf_finetune.modeling.layers`); this module multiplies what
they say about each block into one LR factor, so strategies compose without knowing
of each other. The final learning rate is stored in each param group (never a side
key that HF schedulers ignore), with a `block` key saying which block it is.

Freezing, and why it is done two ways:
- one process: a block with factor 0 gets `requires_grad=False`, so no backward pass
  and no optimizer state is spent on it;
- several processes (DDP): DDP registers only parameters with `requires_grad=True`
  when it wraps the model, so a parameter unfrozen later would never be all-reduced
  and the ranks would drift apart. There, frozen blocks keep `requires_grad=True` and
  sit in LR-0 groups without weight decay (AdamW then moves them by exactly zero);
  "unfreezing" raises their LR. Gradual unfreezing always works this way.
"""

from __future__ import annotations

import functools
import logging
import math

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD, BlockLayout, discover_blocks
from hf_finetune.strategies import STRATEGIES

logger = logging.getLogger("hf_finetune")


def resolve_strategies(names: list[str]) -> list[type]:
    """Strategy classes for `names`, checked for composition; `full` is implied when none says what trains."""
    if len(set(names)) != len(names):
        raise UserError(f"strategy {'+'.join(names)} names a strategy twice")
    classes = [STRATEGIES.get(name) for name in names]
    deciders = [c.name for c in classes if c.decides_what_trains]
    if len(deciders) > 1:
        choices = ", ".join(n for n, c in STRATEGIES.all().items() if c.decides_what_trains)
        raise UserError(f"strategies {' and '.join(deciders)} cannot be combined: choose one of {choices}")
    for a in classes:
        for b in classes:
            if b.name in a.refuses:
                raise UserError(f"strategies {a.name} and {b.name} cannot be combined: {a.refuses[b.name]}")
    if not deciders:
        classes.append(STRATEGIES.get("full"))
    return classes


def unwrap_peft(model):
    """The transformers model inside a PEFT wrapper (its parameters are the same objects)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class TransferPlan:
    """The strategies of one run applied to one model: LR factor per block, freezing, extra loss."""

    def __init__(self, strategies: list, model, new_keys: list[str], distributed: bool):
        self.strategies = strategies
        self.layout: BlockLayout = discover_blocks(unwrap_peft(model))
        for strategy in strategies:
            if strategy.needs_depth:
                self.layout.require_depth(strategy.name)
            if strategy.needs_head:
                self.layout.require_head(strategy.name)
            strategy.check(self.layout)
        self.factor = {
            block: math.prod(s.lr_factor(self.layout, block) for s in strategies) for block in self.layout.names
        }
        self.scheduled = any(s.is_scheduled() for s in strategies)
        self.distributed = distributed
        for strategy in strategies:
            strategy.setup(unwrap_peft(model), self.layout, new_keys)
        if not distributed:
            for block, factor in self.factor.items():
                if factor == 0:
                    for _, param in self.layout.params[block]:
                        param.requires_grad_(False)

    def trained_params(self, block: str) -> list:
        """Parameters the optimizer holds for a block (PEFT's frozen base weights are not among them)."""
        return [p for _, p in self.layout.params[block] if p.requires_grad]

    def param_groups(self, learning_rate: float, weight_decay: float, decay_ids: set[int]) -> list[dict]:
        """Two groups per block (with and without weight decay), each storing its final LR."""
        groups = []
        for block in self.layout.names:
            lr = learning_rate * self.factor[block]
            for decays in (True, False):
                params = [p for p in self.trained_params(block) if (id(p) in decay_ids) == decays]
                if params:
                    # No weight decay in LR-0 groups: AdamW's decay step is lr * wd, but a frozen
                    # block must stay bit-identical even if some optimizer applies decay without lr.
                    wd = weight_decay if decays and lr > 0 else 0.0
                    groups.append({"params": params, "lr": lr, "weight_decay": wd, "block": block})
        if not groups:
            raise UserError("the chosen strategy leaves no parameter to train")
        return groups

    def is_open(self, block: str, step: int, steps_per_epoch: float) -> bool:
        return all(s.open_at_step(self.layout, block, step, steps_per_epoch) for s in self.strategies)

    def gate_scheduler(self, scheduler, steps_per_epoch: float):
        """Wrap an HF LambdaLR schedule so each group's LR is also multiplied by 0/1 from the unfreeze schedule."""
        from torch.optim.lr_scheduler import LambdaLR

        if not isinstance(scheduler, LambdaLR):
            raise UserError(
                f"gradual unfreezing needs a step-wise LR schedule (linear, cosine, constant...), "
                f"not {type(scheduler).__name__}; change lr_scheduler_type"
            )
        optimizer = scheduler.optimizer
        lambdas = [
            functools.partial(_gated, base=base, is_open=self.is_open, block=group["block"], per_epoch=steps_per_epoch)
            for base, group in zip(scheduler.lr_lambdas, optimizer.param_groups, strict=True)
        ]
        return LambdaLR(optimizer, lambdas)

    def extra_loss(self):
        terms = [t for t in (s.extra_loss() for s in self.strategies) if t is not None]
        return sum(terms) if terms else None

    def summary(self, learning_rate: float) -> list[dict]:
        """One row per block: parameters, how many train, their share of the model, their LR."""
        total = sum(p.numel() for block in self.layout.names for _, p in self.layout.params[block]) or 1
        rows = []
        for block in self.layout.names:
            params = sum(p.numel() for _, p in self.layout.params[block])
            lr = learning_rate * self.factor[block]
            trained = sum(p.numel() for p in self.trained_params(block)) if lr > 0 else 0
            state = "scheduled" if self.scheduled and trained and block != HEAD else ("trains" if trained else "frozen")
            rows.append(
                {
                    "block": block,
                    "params": params,
                    "trainable": trained,
                    "share": trained / total,
                    "lr": lr,
                    "state": state,
                }
            )
        return rows


def _gated(step: int, *, base, is_open, block: str, per_epoch: float) -> float:
    return base(step) if is_open(block, step, per_epoch) else 0.0


def format_summary(rows: list[dict]) -> str:
    """The per-block table printed at start and written into the model card (Markdown)."""
    total = sum(r["params"] for r in rows) or 1
    trainable = sum(r["trainable"] for r in rows)
    lines = ["| block | parameters | trained | share of model | learning rate | |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lr = f"{r['lr']:.2e}" if r["trainable"] else "-"
        lines.append(
            f"| {r['block']} | {r['params']:,} | {r['trainable']:,} | {100 * r['share']:.1f}% | {lr} | {r['state']} |"
        )
    lines.append(f"| **total** | {total:,} | {trainable:,} | {100 * trainable / total:.1f}% | | |")
    return "\n".join(lines)
