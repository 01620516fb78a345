"""The notebook API: `hf_finetune.train(...)`, the same run as `hf-finetune train`."""

from __future__ import annotations

from pathlib import Path

from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path
from hf_finetune.training.cross_validation import run_cv
from hf_finetune.training.run import run


def train(config=None, **overrides):
    """Run one fine-tuning job and return its `RunResult` (output_dir, metrics, majority_baseline).

    `config` is a recipe name, a YAML path, a flat dict of recipe keys, or None; keyword
    arguments override it exactly as `--key value` does on the command line.
    """
    recipe_path = None
    if isinstance(config, (str, Path)):
        recipe_path = resolve_recipe_path(str(config))
        values = load_recipe(recipe_path)
    else:
        values = dict(config or {})
    values.update(overrides)
    cfg = config_from_dict(values, recipe=str(recipe_path) if recipe_path else None)
    if cfg.run.cv_folds:  # k-fold cross-validation: a `cross_validation.CVResult` (folds, mean and std)
        return run_cv(cfg)
    return run(cfg)
