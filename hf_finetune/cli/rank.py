"""`hf-finetune rank --models A,B,C --config R [--data D]`: rank candidate checkpoints on your data."""

from __future__ import annotations

from pathlib import Path

from hf_finetune.analysis.advisor import DEFAULT_SAMPLE, data_values, write_recipe
from hf_finetune.analysis.features import parse_models
from hf_finetune.analysis.ranking import markdown_table, rank_checkpoints
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.modeling.loading import checkpoint_modality, resolve_checkpoint
from hf_finetune.outputs import write_json
from hf_finetune.recipes import load_recipe, resolve_recipe_path
from hf_finetune.training.run import setup_logging


def rank_parser() -> CommandParser:
    parser = CommandParser(prog="hf-finetune rank", description=summary("rank"), allow_abbrev=False)
    parser.add_argument("--models", required=True,
                        help="Comma-separated candidate checkpoints: Hub ids, folders or packaged:...")  # fmt: skip
    parser.add_argument("--config", help="Recipe to start from (data, settings); the written recipe keeps them.")
    parser.add_argument("--data", help="Labelled data: a file, a dataset folder, a Hub id or packaged:... "
                                       "(default: the recipe's).")  # fmt: skip
    parser.add_argument("--task", choices=("text_classification", "image_classification"),
                        help="Default: the recipe's, else guessed from the first candidate.")  # fmt: skip
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                        help=f"Training examples every candidate is measured on (default {DEFAULT_SAMPLE}).")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sample and the CV folds (default 0).")
    parser.add_argument("--pooling", choices=("cls", "mean"), default="cls", help="Pooling of the features.")
    parser.add_argument("--text_column", "--text-column")
    parser.add_argument("--label_column", "--label-column")
    parser.add_argument("--image_column", "--image-column")
    parser.add_argument("--out", default="ranked_recipe.yaml",
                        help="The best candidate's recommended recipe; the ranking goes beside it as .json and .md, "
                             "the cached features in <out>.features/.")  # fmt: skip
    return parser


def rank_values(args, models: list[str]) -> dict:
    """The recipe the ranking starts from: `--config`'s values with `--data`, the columns and the task over them."""
    values = load_recipe(resolve_recipe_path(args.config)) if args.config else {}
    if args.data:
        values.update(data_values(args.data))
    if not (values.get("dataset_name") or values.get("train_file")):
        raise UserError("rank needs data: pass --data (or a --config that names it)")
    for key in ("text_column", "label_column", "image_column"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    guessed = f"{checkpoint_modality(resolve_checkpoint(models[0]))}_classification" if models else None
    values["task"] = args.task or values.get("task") or guessed
    values.setdefault("model_name_or_path", models[0] if models else None)
    return values


def rank_main(argv: list[str]) -> int:
    args = rank_parser().parse_args(argv)
    models = parse_models([args.models])
    out = Path(args.out)
    if out.is_dir() or out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out must be a .yaml file path, got {args.out}")
    if args.sample < 20:
        raise UserError(
            f"--sample must be at least 20 (a 5-fold probe needs a few examples per class), got {args.sample}"
        )
    values = rank_values(args, models)
    setup_logging(is_main=True)  # progress and cache lines on stderr, as compare prints them
    ranking = rank_checkpoints(values, models, cache=out.with_suffix(".features"), base_name=args.config,
                               sample=args.sample, seed=args.seed, pooling=args.pooling)  # fmt: skip
    table = markdown_table(ranking.candidates)
    print(table)
    for c in ranking.candidates:
        print(f"{c.rank}. {c.model}: " + "; ".join(c.reasons))
    rec = ranking.recommendation
    print(f"\nrecommended: {ranking.candidates[0].model} with {rec.strategy} ({rec.quadrant})")
    write_recipe(out, ranking.recipe, rec, command="rank")
    write_json(out.with_suffix(".json"), {"candidates": [c.as_dict() for c in ranking.candidates],
                                          "recommendation": rec.as_dict(), "sample": args.sample, "seed": args.seed})  # fmt: skip
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"recipe written to {out} (run it: hf-finetune train --config {out}); ranking in {out.with_suffix('.json')}")
    return EXIT_OK
