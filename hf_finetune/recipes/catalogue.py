"""The shipped recipes: find them by name, and read one, following `base:` to the recipe it varies.

Recipes ship inside the package (`hf_finetune/recipes/<data set>/<name>.yaml`), so an installed wheel
has every recipe the docs show; the folder groups them by data set and the file name is the recipe's
name (`--config fortunes_topics_lora`), unique across folders. A variant names its base recipe
(`base: fortunes_topics`) and states only what differs: its keys win over the base's, key by key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from hf_finetune.errors import UserError, first_line
from hf_finetune.settings.arguments import LAUNCH_CONFIGS_DIR, RECIPES_DIR

BASE_KEY = "base"


def list_recipes() -> dict[str, Path]:
    """Every shipped recipe by name; two files with one name would make `--config NAME` ambiguous."""
    found: dict[str, Path] = {}
    for path in sorted(RECIPES_DIR.glob("*/*.yaml")):
        if path.stem in found:
            raise UserError(f"two shipped recipes are named '{path.stem}': {found[path.stem]} and {path}")
        found[path.stem] = path
    return dict(sorted(found.items()))


def resolve_recipe_path(name_or_path: str) -> Path:
    """`--config` takes a path or the name of a shipped recipe (`sst2` -> hf_finetune/recipes/glue/sst2.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    recipes = list_recipes()
    if name_or_path in recipes:
        return recipes[name_or_path]
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        raise UserError(f"recipe file {name_or_path} does not exist")
    raise UserError(f"no recipe named '{name_or_path}'; shipped recipes: {', '.join(recipes)} (or pass a YAML path)")


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """One recipe file as written (no `base:` followed); bad YAML is one line naming the file and line."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"recipe {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read recipe {path}: {first_line(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"recipe {path} must be a mapping of `key: value` lines, not a {type(data).__name__}")
    return data


def base_path(base: Any, child: Path) -> Path:
    """A base is a shipped recipe's name or a YAML path (relative to the recipe that names it)."""
    if not isinstance(base, str) or not base:
        raise UserError(f"recipe {child}: `base:` must name a recipe (e.g. base: fortunes_topics), got {base!r}")
    beside = child.parent / base
    return beside if beside.is_file() else resolve_recipe_path(base)


def read_with_bases(path: Path) -> dict[str, Any]:
    """A recipe's values with its chain of bases applied (the nearest recipe wins); a cycle is an error."""
    chain: list[Path] = []
    values: dict[str, Any] = {}
    current: Path | None = path
    while current is not None:
        if current.resolve() in chain:
            names = " -> ".join(p.stem for p in [*chain, current.resolve()])
            raise UserError(f"recipe {path}: its `base:` chain loops ({names})")
        chain.append(current.resolve())
        data = read_yaml_mapping(current)
        base = data.pop(BASE_KEY, None)
        values = {**data, **values}
        current = base_path(base, current) if base is not None else None
    return values


def recipe_header(path: Path) -> str:
    """The comment block a recipe starts with: what it does, the command, an override example."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines)


def list_launch_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(LAUNCH_CONFIGS_DIR.glob("*.yaml"))}


def resolve_launch_config(name_or_path: str) -> Path:
    """A shipped accelerate config by name (`cpu_ddp`), or a path to one of the user's own."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    configs = list_launch_configs()
    if name_or_path in configs:
        return configs[name_or_path]
    raise UserError(
        f"no launch config named '{name_or_path}'; shipped: {', '.join(configs)} (or pass an accelerate YAML path)"
    )
