"""Recipes: the shipped YAML files (package data, one folder per data set) and the code that reads them.

`catalogue.py` finds recipes and launch configs by name and follows a variant's `base:`;
`reader.py` turns a recipe plus command-line overrides into a validated RunConfig.
"""

from hf_finetune.recipes.catalogue import (
    list_launch_configs,
    list_recipes,
    recipe_header,
    resolve_launch_config,
    resolve_recipe_path,
)
from hf_finetune.recipes.reader import (
    ConfigParser,
    all_field_names,
    check_flat_values,
    config_classes,
    config_from_dict,
    finalize,
    load_recipe,
    parse_config,
)

__all__ = [
    "ConfigParser",
    "all_field_names",
    "check_flat_values",
    "config_classes",
    "config_from_dict",
    "finalize",
    "list_launch_configs",
    "list_recipes",
    "load_recipe",
    "parse_config",
    "recipe_header",
    "resolve_launch_config",
    "resolve_recipe_path",
]
