"""`hf-finetune tune`: hyper-parameter search on Optuna, resumable, with any number of workers on one study."""

from __future__ import annotations

import argparse

from hf_finetune.analysis.tuning.report import BEST_RECIPE, TRIALS_CSV, best_trial, write_report
from hf_finetune.analysis.tuning.study import TuneOptions, Tuner
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.training.run import setup_logging


def tune_parser() -> CommandParser:
    parser = CommandParser(
        prog="hf-finetune tune",
        description=summary("tune") + ". Any other `hf-finetune train` option (--max_train_samples, "
        "--model_name_or_path, ...) applies to every trial and fixes that knob (it is not searched). "
        "Run the same command again to continue a study; run it on another machine with the same --storage "
        "to add a worker. See docs/tuning.md.",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--config", required=True, help="Recipe name or YAML path: data, checkpoint, settings, optional tune_space.")
    add("--n_trials", "--n-trials", type=int, default=20,
        help="Size of the study: workers start trials until it holds this many finished ones (complete or "
        "pruned), so a rerun adds only what is missing (default 20).")  # fmt: skip
    add("--timeout", type=float, help="Start no new trial after this many seconds (a running trial finishes).")
    add("--storage", help="Optuna storage: sqlite:///PATH, journal:PATH or a database URL (postgresql://...). "
        "Default: sqlite:///<out>/study.db.")  # fmt: skip
    add("--study_name", "--study-name", help="Default: <recipe>-tune.")
    add("--sampler", default="tpe", help="tpe (default), random, or grid (3 points per range).")
    add("--sampler_seed", "--sampler-seed", type=int, help="Seed of the sampler (default: none; set it only with "
        "one worker, or every worker proposes the same trials).")  # fmt: skip
    add("--pruner", default="median", help="median (default), hyperband, or none; judged each epoch.")
    add("--pruner_startup_trials", "--pruner-startup-trials", type=int, default=3,
        help="median pruner: trials that finish unpruned before it judges others (default 3).")  # fmt: skip
    add("--metric", help="Validation metric to optimise (default: the recipe's metric_for_best_model); `loss` "
        "and error metrics are minimised, others maximised.")  # fmt: skip
    add("--out", help="Output folder: study.db, trials/, reports. Default: outputs/tune-<recipe>.")
    add("--strategies", help="Comma-separated strategies to choose between, e.g. full,llrd,lora or "
        "full,freeze_bottom+llrd (default: the recipe's strategy, or its tune_space `strategy:` list).")  # fmt: skip
    add("--advise-first", "--advise_first", action=argparse.BooleanOptionalAction, default=False,
        help="Measure the data with `hf-finetune advise` (~10-20 s) and run its recommendation as the first "
        "trial of a new study.")  # fmt: skip
    return parser


def tune_main(argv: list[str]) -> int:
    parser = tune_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return EXIT_OK
    args, overrides = parser.parse_known_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()] if args.strategies else None
    if args.strategies is not None and not strategies:
        raise UserError("--strategies is empty; name one or more, e.g. full,lora")
    options = TuneOptions(
        config=args.config, overrides=overrides, n_trials=args.n_trials, timeout=args.timeout, storage=args.storage,
        study_name=args.study_name, sampler=args.sampler, pruner=args.pruner,
        pruner_startup_trials=args.pruner_startup_trials, metric=args.metric, out=args.out, strategies=strategies,
        advise_first=args.advise_first, sampler_seed=args.sampler_seed,
    )  # fmt: skip
    setup_logging(is_main=True)
    tuner = Tuner(options)

    def write(study):
        return write_report(study, tuner.out, tuner.metric, tuner.storage_url, tuner.space.describe())

    study = tuner.work(on_trial_end=write)
    path = write(study)
    best = best_trial(study)
    if best is not None:
        print(f"best trial {best.number}: validation {tuner.metric} {best.value:.4f}; {best.params}")
        print(f"best recipe: {tuner.out / BEST_RECIPE} (hf-finetune train --config {tuner.out / BEST_RECIPE})")
    print(f"report: {path}; trials: {tuner.out / TRIALS_CSV}; dashboard: optuna-dashboard {tuner.storage_url}")
    return EXIT_OK
