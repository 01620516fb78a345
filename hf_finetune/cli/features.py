"""`hf-finetune features` and `hf-finetune classical`: frozen features and scikit-learn heads on them."""

from __future__ import annotations

from pathlib import Path

from hf_finetune.analysis.classical import HEADS, run_classical
from hf_finetune.analysis.features import POOLINGS, features_for_config
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser, config_with_command_flags
from hf_finetune.errors import EXIT_OK
from hf_finetune.training.run import setup_logging


def features_main(argv: list[str]) -> int:

    parser = CommandParser(
        prog="hf-finetune features",
        description=summary("features") + ". Any `hf-finetune train` option (--config RECIPE, --text_column, "
        "--image_column, --label_column, --max_train_samples, ...) selects the data, exactly as for training.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--model", action="append", help="Backbone checkpoint; give it twice (or A,B) to concatenate two backbones."
    )
    parser.add_argument("--data", help="Data: a file (train_file), a folder, a Hub id or packaged:NAME (dataset_name).")
    parser.add_argument("--out", required=True, help="Folder for the cache (<split>.safetensors + features.json).")
    parser.add_argument("--pooling", choices=POOLINGS, default="cls", help="cls token, or mean over real tokens.")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=64)
    parser.add_argument("--overwrite", action="store_true", help="Replace a cache made from another request.")
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return EXIT_OK
    args, cfg = config_with_command_flags(parser, argv)

    setup_logging(is_main=True)
    models = args.models or [cfg.model.model_name_or_path]
    sets, reused = features_for_config(
        cfg, models, args.out, pooling=args.pooling, batch_size=args.batch_size, overwrite=args.overwrite
    )
    shapes = ", ".join(f"{split} {fs.features.shape[0]}x{fs.features.shape[1]}" for split, fs in sets.items())
    print(f"{'reused' if reused else 'wrote'} features in {args.out}: {shapes}")
    return EXIT_OK


def classical_main(argv: list[str]) -> int:

    parser = CommandParser(prog="hf-finetune classical", description=summary("classical"), allow_abbrev=False)
    parser.add_argument("--features", required=True, help="Folder written by `hf-finetune features`.")
    parser.add_argument("--head", required=True, help=f"One of: {', '.join(HEADS)}.")
    parser.add_argument("--cv", type=int, default=5, help="Stratified folds on the train split (0: no CV).")
    parser.add_argument(
        "--grid-C", "--grid_C", "--grid-c", dest="grid_c", action="store_true",
        help="Choose C by grid search (GridSearchCV over the folds, macro F1); logreg and SVMs only.",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="Seed of the folds (and of the solvers).")
    parser.add_argument("--out", required=True, help="Folder for the fitted pipeline and the report.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a finished classical run in --out.")
    args = parser.parse_args(argv)

    setup_logging(is_main=True)
    report = run_classical(
        args.features, args.head, Path(args.out), cv=args.cv, grid_c=args.grid_c, seed=args.seed,
        overwrite=args.overwrite,
    )  # fmt: skip
    print(report["markdown"])
    print(f"model saved to {args.out}; predict with: hf-finetune predict --model {args.out} --text ...")
    return EXIT_OK
