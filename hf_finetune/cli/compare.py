"""`hf-finetune compare`: transfer methods side by side, and the transfer report."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_finetune.analysis.compare.runs import DEFAULT_METHODS, DEFAULT_MIN_STEPS, Comparison, markdown_table, parse_list
from hf_finetune.analysis.features import POOLINGS
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.training.run import setup_logging


def compare_main(argv: list[str]) -> int:

    parser = CommandParser(
        prog="hf-finetune compare",
        description=summary("compare") + ". Any other `hf-finetune train` option (--max_train_samples, "
        "--num_train_epochs, --model_name_or_path, ...) applies to every method.",
        allow_abbrev=False,
    )
    parser.add_argument("--config", required=True, help="Recipe name or YAML path: data, checkpoint, settings.")
    parser.add_argument(
        "--strategies", "--methods", default=DEFAULT_METHODS,
        help="Comma-separated methods: strategies (full, linear_probe, lora, freeze_bottom+llrd, ...) and "
        "features_<head> (features_logreg, features_svm, features_svm_rbf, features_naive_bayes, features_knn).",
    )  # fmt: skip
    parser.add_argument("--fractions", default="1.0", help="Shares of the train split, e.g. 0.1,0.3,1.0.")
    parser.add_argument("--seeds", default="42", help="Training seeds, e.g. 42,43,44.")
    parser.add_argument(
        "--min_steps", type=int, default=DEFAULT_MIN_STEPS,
        help="Raise a run's epochs until it takes at least this many optimizer steps, so small fractions "
        f"train too (default {DEFAULT_MIN_STEPS}; 0: the recipe's epochs for every fraction).",
    )  # fmt: skip
    parser.add_argument("--pooling", choices=POOLINGS, default="cls", help="Pooling of the features_* methods.")
    parser.add_argument("--out", help="Output folder. Default: outputs/compare-<recipe>.")
    parser.add_argument(
        "--report", action=argparse.BooleanOptionalAction, default=True,
        help="Write the transfer report (report/report.md, .html, learning-curve PNGs; start, slope, asymptote "
        "and negative transfer against scratch) after the runs (default: on; --no-report skips it).",
    )  # fmt: skip
    parser.add_argument("--metric", choices=("accuracy", "macro_f1"), default="accuracy", help="The report's metric.")
    parser.add_argument("--advice", help="The .json `hf-finetune advise` wrote: the report checks its strategy.")
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return EXIT_OK
    args, overrides = parser.parse_known_args(argv)
    if args.advice and not Path(args.advice).is_file():
        raise UserError(f"--advice {args.advice} does not exist: pass the .json that `hf-finetune advise` wrote")

    setup_logging(is_main=True)
    comparison = Comparison(
        args.config, overrides, parse_list(args.strategies, str, "strategies"),
        parse_list(args.fractions, float, "fractions"), parse_list(args.seeds, int, "seeds"),
        Path(args.out) if args.out else None, pooling=args.pooling, min_steps=args.min_steps,
    )  # fmt: skip
    rows = comparison.run()
    print()
    print(markdown_table(rows))
    print(f"\nrows in {comparison.out / 'compare.json'}")
    if args.report:
        report = comparison.write_report(rows, metric=args.metric, advice=args.advice)
        print(f"transfer report: {report / 'report.md'} and {report / 'report.html'}")
    return EXIT_OK
