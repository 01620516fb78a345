"""MkDocs hook: write the reference pages from the code at build time, so they cannot drift from it.

Every page under `reference/` is generated here and exists only in the build: the commands' options come
from their argparse parsers (`hf-finetune COMMAND --help`), the train options from the config dataclasses,
the recipes from the shipped files with their headers, the strategies and tasks from their registries, the
launch configs from the shipped files. `mkdocs build --strict` fails on a broken link to any of them.

Pages other engineers add (`docs/deployment.md`, `docs/tuning.md`, ...) join the nav when the file exists
(OPTIONAL_PAGES), so a branch without them still builds strictly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from pathlib import Path

from mkdocs.structure.files import File

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# page -> the nav section it belongs in, added only when the page exists in docs/.
OPTIONAL_PAGES = {
    "precision.md": ("Guides", "Precision"),
    "vision_recipes.md": ("Guides", "Vision recipes"),
    "which_checkpoint.md": ("Guides", "Which checkpoint"),
    "linear_probe.md": ("Guides", "Linear probe and LP-FT"),
    "model_zoo.md": ("Guides", "Model zoo"),
    "tuning.md": ("Guides", "Hyper-parameter tuning"),
    "scale_out.md": ("Operations", "Scale out (clusters)"),
    "deployment.md": ("Operations", "Deployment"),
    "support.md": ("Operations", "Support"),
}
REFERENCE = {
    "reference/cli.md": "Commands",
    "reference/train-options.md": "Train options",
    "reference/recipes.md": "Recipes",
    "reference/strategies.md": "Strategies and tasks",
    "reference/launch-configs.md": "Launch configs",
}


def on_config(config):
    docs = Path(config["docs_dir"])
    nav = config["nav"]
    for page, (section, title) in OPTIONAL_PAGES.items():
        if (docs / page).is_file() and not any(page in str(entry) for entry in nav):
            entries = next((e[section] for e in nav if isinstance(e, dict) and section in e), None)
            if entries is None:
                entries = []
                nav.insert(-1, {section: entries})
            entries.append({title: page})
    return config


def on_files(files, config):
    pages = {
        "reference/cli.md": cli_page,
        "reference/train-options.md": train_options_page,
        "reference/recipes.md": recipes_page,
        "reference/strategies.md": strategies_page,
        "reference/launch-configs.md": launch_configs_page,
    }
    for uri, build in pages.items():
        files.append(File.generated(config, uri, content=build()))
    return files


def captured_help(argv: list[str]) -> str:
    """What `hf-finetune ARGV` prints: argparse's own help for the commands that build a parser."""
    from hf_finetune.cli.app import dispatch

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        dispatch(argv)
    return out.getvalue().rstrip()


def cli_page() -> str:
    from hf_finetune.cli.app import usage
    from hf_finetune.cli.commands import COMMANDS

    parts = [
        "# Commands\n",
        "Generated from the command table and each command's argparse parser (`hf-finetune COMMAND --help`).\n",
        f"```text\n{usage()}\n```\n",
    ]
    for name, command in COMMANDS.items():
        parts.append(f"## `hf-finetune {name}`\n\n{command.summary}\n")
        if name in ("train", "pretrain"):
            parts.append("Every option is a field of the config dataclasses: see [train options](train-options.md).\n")
            continue
        parts.append(f"```text\n{captured_help([name, '--help'])}\n```\n")
    return "\n".join(parts)


def field_row(f) -> str:
    default = f.default if f.default is not dataclasses.MISSING else "(required)"
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    names = [f"`--{f.name}`", *(f"`{a}`" for a in f.metadata.get("aliases", []) if "_" in a)]
    text = " ".join(str(f.metadata.get("help", "")).split()).replace("|", "\\|")
    return f"| {'<br>'.join(names)} | `{default!r}` | {text} |"


def train_options_page() -> str:
    from hf_finetune.recipes import config_classes
    from hf_finetune.settings.conventions import ALIASES
    from hf_finetune.settings.ignored import IGNORED_TRAINING_FLAGS

    parts = [
        "# Train options\n",
        "Generated from the config dataclasses. Each is a recipe key and a `--key value` option of "
        "`hf-finetune train` (hyphens work too: `--num-train-epochs`). A strategy's or a task's own options "
        "are used only with it.\n",
        "## Refused: accepted by `TrainingArguments`, not honoured here\n",
        "Set to anything but the value below, these stop the run before any work, in one line.\n",
        "| option | the value hf_finetune runs with | why, and what to do instead |\n|---|---|---|",
        *(f"| `--{k}` | `{v}` | {why} |" for k, (v, why) in IGNORED_TRAINING_FLAGS.items()),
        "\n`hub_strategy` (`end`, the default here: one push of the finished run; `every_save`, `checkpoint`, "
        "`all_checkpoints`: complete checkpoints pushed during training) and `hub_always_push` work as in "
        "transformers; see [Scale-out and operations](../scale_out.md).\n",
        "## Aliases (the transformers example scripts' names)\n",
        "| alias | our option |\n|---|---|",
        *(f"| `--{a}` | `--{ours}` |" for a, ours in ALIASES.items()),
        "",
    ]
    for cls in config_classes():
        fields = [f for f in dataclasses.fields(cls) if f.init]
        own = [f for f in fields if f.name in cls.__dict__.get("__annotations__", {})]
        parts.append(f"## {cls.__name__}\n\n{(cls.__doc__ or '').strip().splitlines()[0]}\n")
        parts += ["| option | default | what it does |", "|---|---|---|", *map(field_row, own), ""]
        inherited = [f"`--{f.name}`" for f in fields if f not in own]
        if inherited:  # TrainingArguments' own fields, handed to the Trainer as they are
            parts.append(
                "Every other `transformers.TrainingArguments` field, handed to the Trainer as it is (see the "
                "[transformers documentation](https://huggingface.co/docs/transformers/main_classes/trainer"
                "#transformers.TrainingArguments)): " + ", ".join(inherited) + ".\n"
            )
    return "\n".join(parts)


def recipes_page() -> str:
    from hf_finetune.recipes import list_recipes, recipe_header
    from hf_finetune.recipes.catalogue import read_yaml_mapping

    parts = [
        "# Recipes\n",
        "Generated from the recipes that ship in the package (`hf_finetune/recipes/<data set>/<name>.yaml`), "
        "grouped by data set. `hf-finetune train --config NAME` runs one; a variant names its `base:` and "
        "states only what differs.\n",
    ]
    group = None
    for name, path in sorted(list_recipes().items(), key=lambda item: (item[1].parent.name, item[0])):
        if path.parent.name != group:
            group = path.parent.name
            parts.append(f"## {group}\n")
        body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
        base = read_yaml_mapping(path).get("base")
        parts.append(f"### `{name}`\n")
        if base:
            parts.append(f"Based on [`{base}`](#{base}): only what differs is written.\n")
        parts.append(f"```text\n{recipe_header(path)}\n```\n\n```yaml\n{body.strip()}\n```\n")
    return "\n".join(parts)


def strategies_page() -> str:
    from hf_finetune.strategies import STRATEGIES
    from hf_finetune.tasks import TASKS

    parts = [
        "# Strategies and tasks\n",
        "Generated from the registries (`hf-finetune strategies`, `hf-finetune tasks`). Strategies compose: "
        "`--strategy freeze_bottom+llrd`, or a list in a recipe. See [transfer strategies](../strategies.md).\n",
        "| strategy | what it does | default learning rate | its options |\n|---|---|---|---|",
    ]
    for name, cls in STRATEGIES.all().items():
        options = ", ".join(f"`{f.name}`" for f in dataclasses.fields(cls.Arguments)) if cls.Arguments else ""
        lr = f"{cls.default_learning_rate:g}" if cls.default_learning_rate else "the others'"
        parts.append(f"| `{name}` | {cls.summary} | {lr} | {options} |")
    parts += ["", "| task | what it does |", "|---|---|"]
    parts += [f"| `{name}` | {cls.summary} |" for name, cls in TASKS.all().items()]
    return "\n".join(parts) + "\n"


def launch_configs_page() -> str:
    from hf_finetune.recipes import list_launch_configs, recipe_header

    parts = [
        "# Launch configs\n",
        "Generated from the accelerate configs that ship in the package. `hf-finetune launch-config NAME` "
        "prints a config's path; `hf-finetune train --launch NAME ...` starts the launch itself.\n",
    ]
    for name, path in list_launch_configs().items():
        body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
        parts.append(f"## `{name}`\n\n```text\n{recipe_header(path)}\n```\n\n```yaml\n{body.strip()}\n```\n")
    return "\n".join(parts)
