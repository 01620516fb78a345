"""Recipes: read them, and turn a recipe plus command-line overrides into a validated RunConfig.

This sits above the plug-ins because the keys a recipe may hold are those of every registered strategy's
and task's options dataclass; the settings layer below knows only the shared dataclasses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from hf_finetune.errors import UserError, first_line
from hf_finetune.recipes.catalogue import read_with_bases, resolve_recipe_path
from hf_finetune.settings.arguments import (
    AUGMENTATIONS,
    DEFAULT_OUTPUT_ROOT,
    TAG_SCHEMES,
    DataArguments,
    FinetuneTrainingArguments,
    ModelArguments,
    RunArguments,
    RunConfig,
    StrategyArguments,
    data_is_local,
    parse_class_weights,
)
from hf_finetune.settings.conventions import apply_cache_dir, canonical_keys
from hf_finetune.settings.regularisation import check_regularisation
from hf_finetune.settings.value_types import check_value_types
from hf_finetune.strategies import STRATEGIES
from hf_finetune.strategies.plan import resolve_strategies
from hf_finetune.tasks import TASKS


def config_classes() -> tuple[type, ...]:
    """Our dataclasses plus each strategy's and each task's own options dataclass (declared in its file)."""

    owners = [*STRATEGIES.all().values(), *TASKS.all().values()]
    options = tuple(cls.Arguments for cls in owners if getattr(cls, "Arguments", None) is not None)
    return (RunArguments, ModelArguments, DataArguments, StrategyArguments, *options, FinetuneTrainingArguments)


def all_field_names() -> set[str]:
    return {f.name for cls in config_classes() for f in dataclasses.fields(cls) if f.init}


def check_flat_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Keys must be config fields (an unknown key is an error naming it); a strategy list joins with `+`."""
    values = canonical_keys(values)  # `text_column_name` (example scripts) -> `text_column`; `-` -> `_`
    unknown = sorted(set(values) - all_field_names())
    if unknown:
        raise UserError(
            f"unknown key(s) in {where}: {', '.join(unknown)}. `hf-finetune train --help` lists every valid key"
        )
    values = dict(values)
    if isinstance(values.get("strategy"), list):
        values["strategy"] = "+".join(values["strategy"])
    if isinstance(values.get("class_weights"), list):
        values["class_weights"] = ",".join(str(v) for v in values["class_weights"])
    return check_value_types(values, config_classes(), where)


def load_recipe(path: Path) -> dict[str, Any]:
    """Read a recipe (following `base:`) into flat values; unknown keys are an error that names them."""
    return check_flat_values(read_with_bases(path), f"recipe {path}")


class ConfigParser(HfArgumentParser):
    """HfArgumentParser over our dataclasses, plus `--config`; errors become one-line UserErrors."""

    def __init__(self, prog: str | None = None):
        super().__init__(config_classes(), prog=prog, description=__doc__.split("\n\n")[1])
        self.add_argument(
            "--config",
            help="Recipe: a YAML path or the name of a shipped recipe (`hf-finetune recipes` lists them).",
        )

    def error(self, message):  # argparse's default prints usage and exits; we want one line, exit 2
        raise UserError(f"{message}. Run with --help to see every option")


def parse_config(argv: list[str] | None = None, task: str | None = None, prog: str | None = None) -> RunConfig:
    """Recipe defaults, then command-line overrides, into a validated RunConfig."""
    parser = ConfigParser(prog=prog)
    known, _ = parser.parse_known_args(argv)
    recipe_path = resolve_recipe_path(known.config) if known.config else None
    if recipe_path is not None:
        parser.set_defaults(**load_recipe(recipe_path))
    try:
        *sections, namespace, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    except UserError:
        raise
    except (ValueError, TypeError) as exc:  # raised by TrainingArguments.__post_init__ on bad combinations
        raise UserError(f"invalid training settings: {first_line(exc)}") from None
    if remaining:
        raise UserError(f"unknown option(s): {' '.join(remaining)}. Run with --help to see every option")
    cfg = RunConfig.from_sections(sections, recipe=str(recipe_path) if recipe_path else None)
    finalize(cfg, task)
    return cfg


def config_from_dict(values: dict[str, Any], task: str | None = None, recipe: str | None = None) -> RunConfig:
    """Build a RunConfig from a flat dict (the notebook API and tests); `recipe` names the output folder."""
    values = check_flat_values(values, "config")
    try:
        sections = HfArgumentParser(config_classes()).parse_dict(values)
    except (ValueError, TypeError) as exc:
        raise UserError(f"invalid settings: {first_line(exc)}") from None
    cfg = RunConfig.from_sections(sections, recipe=recipe)
    finalize(cfg, task)
    return cfg


def finalize(cfg: RunConfig, task: str | None) -> None:
    """Checks that need several fields, and derived defaults."""
    if task is not None and cfg.run.task != task:
        raise UserError(f"this entry point runs task '{task}' but the recipe says task: {cfg.run.task}")
    if not cfg.model.model_name_or_path:
        raise UserError("no checkpoint given: set model_name_or_path in the recipe or pass --model_name_or_path")
    if not (cfg.data.dataset_name or cfg.data.train_file):
        raise UserError("no training data given: set dataset_name or train_file in the recipe or on the command line")
    if cfg.run.cv_folds == 1 or cfg.run.cv_folds < 0:
        raise UserError(f"cv_folds must be 0 (off) or at least 2, got {cfg.run.cv_folds}")
    if not 0 < cfg.data.validation_size < 1:
        raise UserError(f"validation_size must be between 0 and 1 (a share of train), got {cfg.data.validation_size}")
    if cfg.data.max_seq_length < 1:
        raise UserError(f"max_seq_length must be at least 1, got {cfg.data.max_seq_length}")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        if getattr(cfg.training, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(cfg.training, name)}")
    if cfg.data.augmentation not in AUGMENTATIONS:
        raise UserError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got '{cfg.data.augmentation}'")
    if not 0 < cfg.data.augmentation_min_scale <= 1:
        raise UserError(f"augmentation_min_scale must be in (0, 1], got {cfg.data.augmentation_min_scale}")
    if not 0 < cfg.data.multi_label_threshold < 1:
        raise UserError(f"multi_label_threshold must be between 0 and 1, got {cfg.data.multi_label_threshold}")
    if cfg.data.tag_scheme not in TAG_SCHEMES:
        raise UserError(f"tag_scheme must be one of {', '.join(TAG_SCHEMES)}, got '{cfg.data.tag_scheme}'")
    parse_class_weights(cfg.data.class_weights)  # a typo stops here, before any data is read
    apply_cache_dir(cfg.model.cache_dir)
    check_regularisation(cfg)
    if cfg.data.data_private is None:
        cfg.data.data_private = data_is_local(cfg.data)
    if cfg.training.resume_from_checkpoint:  # Trainer's own spelling of an explicit checkpoint
        cfg.run.resume = cfg.training.resume_from_checkpoint
    cfg.run.resume = {"true": "auto", "none": "false", "no": "false"}.get(cfg.run.resume.lower(), cfg.run.resume)
    if not cfg.strategy.strategy_names:
        raise UserError("strategy is empty: name one, e.g. --strategy full")

    strategies = resolve_strategies(cfg.strategy.strategy_names)
    if cfg.training.learning_rate is None:
        cfg.training.learning_rate = next(s.default_learning_rate for s in strategies if s.default_learning_rate)
    if cfg.training.learning_rate < 0:
        raise UserError(f"learning_rate must not be negative, got {cfg.training.learning_rate}")
    if not cfg.training.output_dir_given:
        stem = Path(cfg.recipe).stem if cfg.recipe else "run"
        cfg.training.output_dir = str(Path(DEFAULT_OUTPUT_ROOT) / f"{stem}-{'+'.join(cfg.strategy.strategy_names)}")
