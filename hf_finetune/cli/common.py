"""What the command modules share: a parser whose errors are one line, and train options on any command."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_finetune.analysis.features import parse_models
from hf_finetune.cli.commands import summary
from hf_finetune.errors import UserError
from hf_finetune.recipes import parse_config


class CommandParser(argparse.ArgumentParser):
    """argparse with one-line errors, and both spellings of every long option (`--repo-id`, `--repo_id`)."""

    def parse_known_args(self, args=None, namespace=None):
        return super().parse_known_args(self.either_spelling(args), namespace)

    def either_spelling(self, args):
        """`--a_b` for a parser that defines `--a-b` (and the reverse): one spelling style per command family
        in the help, both accepted everywhere."""
        if args is None:
            return None
        known, out = self._option_string_actions, []
        for arg in args:
            name, eq, value = arg.partition("=")
            if name.startswith("--") and name not in known:
                for other in ("--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
                    if other in known:
                        arg = other + eq + value
                        break
            out.append(arg)
        return out

    def error(self, message):
        raise UserError(f"{message}. Run `{self.prog} --help` for usage")


def model_parser(command: str) -> argparse.ArgumentParser:
    parser = CommandParser(prog=f"hf-finetune {command}", description=summary(command))
    parser.add_argument("--model", required=True, help="Folder of a trained model (the run's output_dir).")
    parser.add_argument("--text_column", "--text-column", default="text", help="Column with the input text.")
    parser.add_argument("--text_pair_column", "--text-pair-column", help="Second text column for pair inputs.")
    return parser


def config_with_command_flags(parser: argparse.ArgumentParser, argv: list[str]):
    """(command flags, run config): the command's own flags, then every train option (`--config RECIPE`,
    `--text_column`, `--max_train_samples`, ...) through the same parser as `hf-finetune train`.
    `args.models` is the list of `--model` values (repeated or comma-separated)."""

    args, rest = parser.parse_known_args(argv)
    models = args.models = parse_models(getattr(args, "model", None))
    if getattr(args, "data", None):
        data_flag = "--train_file" if Path(args.data).expanduser().is_file() else "--dataset_name"
        rest = [*rest, data_flag, args.data]
    if models:
        rest = [*rest, "--model_name_or_path", models[0]]
    elif "--config" not in rest and not any(a.startswith("--config=") for a in rest):
        raise UserError(f"pass --model (or a recipe with --config). Run `{parser.prog} --help` for usage")
    return args, parse_config(rest, prog=parser.prog)
