"""The search space of one study: the strategies' own spaces, the common knobs, and the recipe's `tune_space:`.

Each strategy declares the ranges of its options where the option lives (`Strategy.search_space`); this
module only assembles them. A trial first picks a strategy (when several are searched), then samples that
strategy's knobs and the common ones (define-by-run), so TPE learns per strategy. With several strategies a
strategy's knobs are named `<strategy>:<key>` (`lora:learning_rate`): learning rates of full fine-tuning and
of LoRA live in different ranges and must not share one model in the sampler.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import yaml

from hf_finetune.errors import UserError
from hf_finetune.recipes import all_field_names
from hf_finetune.settings.search_space import Choice, FloatRange, IntRange, parse_range
from hf_finetune.strategies import STRATEGIES
from hf_finetune.strategies.plan import resolve_strategies

# The knobs every strategy shares. Epochs: BERT's paper searched 2-4; 1 and 5 bracket it for small and
# large data. Batch 16-64: what fits a small model on a laptop. Warm-up as a share of the steps (< 1),
# 0-20% (the recipes use 10%). Weight decay 0-0.1 (AdamW's usual 0.01 inside).
COMMON_SPACE = {
    "num_train_epochs": IntRange(1, 5),
    "per_device_train_batch_size": Choice((16, 32, 64)),
    "warmup_steps": FloatRange(0.0, 0.2),
    "weight_decay": FloatRange(0.0, 0.1),
}
# Keys of `tune_space:` that are not recipe keys.
REPLACE_KEY = "replace"
STRATEGY_KEY = "strategy"


@dataclass
class SearchSpace:
    strategies: list[str]  # candidate strategies (`freeze_bottom+llrd` is one candidate)
    common: dict = field(default_factory=dict)  # recipe key -> range, for every strategy
    own: dict = field(default_factory=dict)  # strategy -> {recipe key -> range}

    def param_name(self, strategy: str, key: str) -> str:
        return key if len(self.strategies) == 1 else f"{strategy}:{key}"

    def params(self, strategy: str) -> dict:
        """Optuna parameter name -> (recipe key, range) for a trial of `strategy`."""
        out = {key: (key, dist) for key, dist in self.common.items()}
        out.update({self.param_name(strategy, k): (k, d) for k, d in self.own[strategy].items()})
        return out

    def grid(self) -> list[dict]:
        """Every grid point as the parameters of one trial (3 points per range), strategy by strategy.

        Optuna's GridSampler takes one product over all parameters, so with several strategies it would
        spend trials on combinations of knobs a trial never uses, and it stops the study from inside
        `tell`, which only works in `study.optimize`; enqueuing the points works with ask-and-tell."""
        points = []
        for strategy in self.strategies:
            names = list(self.params(strategy))
            fixed = {STRATEGY_KEY: strategy} if len(self.strategies) > 1 else {}
            axes = [dist.grid() for _, dist in self.params(strategy).values()]
            points += [{**fixed, **dict(zip(names, combo, strict=True))} for combo in itertools.product(*axes)]
        return points

    def describe(self) -> list[str]:
        lines = [f"strategy: {', '.join(self.strategies)}"]
        lines += [f"{k}: {d.describe()}" for k, d in self.common.items()]
        for strategy in self.strategies:
            lines += [f"{self.param_name(strategy, k)}: {d.describe()}" for k, d in self.own[strategy].items()]
        return lines


def suggest(trial, space: SearchSpace) -> tuple[str, dict[str, Any]]:
    """(strategy, recipe values) of one trial, sampled define-by-run."""
    strategy = space.strategies[0]
    if len(space.strategies) > 1:
        strategy = trial.suggest_categorical(STRATEGY_KEY, space.strategies)
    values = {}
    for name, (key, dist) in space.params(strategy).items():
        if isinstance(dist, Choice):
            values[key] = trial.suggest_categorical(name, list(dist.choices))
        elif isinstance(dist, IntRange):
            values[key] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        else:
            values[key] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return strategy, values


def option_owners() -> dict[str, str]:
    """Recipe key -> the strategy whose options dataclass declares it (`lora_r` -> `lora`)."""
    owners = {}
    for name, cls in STRATEGIES.all().items():
        if cls.Arguments is not None:
            owners.update({f.name: name for f in dataclasses.fields(cls.Arguments)})
    return owners


def read_tune_space(value) -> dict:
    """The recipe's `tune_space:` (a mapping in YAML, a YAML/JSON string on the command line), or {}."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"tune_space is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise UserError(f"tune_space must be a mapping of recipe keys to ranges, got {value!r}")
    return value


def build_space(cfg, num_blocks: int, strategies: list[str] | None, fixed: set[str]) -> SearchSpace:
    """The study's space from the strategies' declarations, the common knobs and `cfg.run.tune_space`.

    `strategies`: the `--strategies` candidates (None: the recipe's `tune_space: strategy:`, else its strategy).
    `fixed`: recipe keys given on the command line, which are therefore not searched."""
    spec = read_tune_space(cfg.run.tune_space)
    replace = bool(spec.pop(REPLACE_KEY, False))
    from_spec = spec.pop(STRATEGY_KEY, None)
    candidates = strategies or ([from_spec] if isinstance(from_spec, str) else from_spec) or [cfg.strategy.strategy]
    candidates = [("+".join(c) if isinstance(c, list) else str(c)) for c in candidates]
    recipe_strategy = "+".join(cfg.strategy.strategy_names)
    space = SearchSpace(strategies=candidates, common={} if replace else dict(COMMON_SPACE))
    for candidate in candidates:
        classes = resolve_strategies([s for s in candidate.split("+") if s])
        # The recipe's learning rate was tuned for the recipe's strategy: the centre of that strategy's range.
        lr = cfg.training.learning_rate if candidate == recipe_strategy else None
        own = {} if replace else {k: d for c in classes for k, d in c.search_space(num_blocks, lr).items()}
        space.own[candidate] = own
    apply_spec(space, spec)
    for key in fixed:
        space.common.pop(key, None)
        for own in space.own.values():
            own.pop(key, None)
    if len(space.strategies) == 1 and not space.params(space.strategies[0]):
        raise UserError(
            "the search space is empty (every knob is fixed on the command line or set to null in "
            "tune_space); leave at least one knob to search"
        )
    return space


def apply_spec(space: SearchSpace, spec: dict) -> None:
    """Narrow, replace, add (`key: range`) or drop (`key: null`) knobs; unknown keys are an error."""
    known, owners = all_field_names(), option_owners()
    unknown = sorted(k for k in spec if k not in known)
    if unknown:
        raise UserError(
            f"unknown key(s) in tune_space: {', '.join(unknown)}; tune_space takes recipe keys "
            f"(`hf-finetune train --help`), `{STRATEGY_KEY}` and `{REPLACE_KEY}`"
        )
    for key, value in spec.items():
        owner = owners.get(key)
        if owner is not None:
            targets = [c for c in space.strategies if owner in c.split("+")]
            if not targets:
                raise UserError(
                    f"tune_space: {key} is an option of strategy {owner}, which this study does not search "
                    f"(strategies: {', '.join(space.strategies)}); add {owner} to --strategies or drop the key"
                )
            places = [space.own[c] for c in targets]
        elif key == "learning_rate":  # owned by whichever strategy decides what trains: every candidate
            places = list(space.own.values())
        else:
            places = [space.common]
        for place in places:
            if value is None:
                place.pop(key, None)
            else:
                place[key] = parse_range(key, value)
