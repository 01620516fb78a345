"""`hf-finetune`: train, evaluate, predict, merge, push to the Hub, and list what the suite offers.

Config fields are `--snake_case` (hyphens accepted too); command-only flags use
hyphens. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from .errors import EXIT_OK, UserError

COMMANDS = {
    "train": "fine-tune a checkpoint: hf-finetune train --config RECIPE [--key value ...]",
    "pretrain": "pretrain the offline ViT on the Fashion-MNIST source classes (reused once finished)",
    "evaluate": "score a trained model on a labelled file",
    "predict": "label texts from a file or the command line (CSV or JSONL out)",
    "features": "cache the pooled features of a frozen backbone (or two): hf-finetune features --model M --data D --out F",
    "classical": "fit a scikit-learn head on cached features: hf-finetune classical --features F --head logreg --out DIR",
    "compare": "transfer methods side by side on one recipe's splits: hf-finetune compare --config R --strategies ...",
    "merge": "merge PEFT adapters into their base model: hf-finetune merge --model DIR --out DIR2",
    "push": "push a finished run to the Hugging Face Hub: hf-finetune push --model DIR --repo-id user/name",
    "advise": "measure a checkpoint on your data and recommend a strategy: hf-finetune advise --model M --data D",
    "rank": "rank candidate checkpoints on your data and write the best one's recipe: hf-finetune rank --models A,B --config R",
    "recipes": "list the shipped recipes",
    "strategies": "list the transfer strategies",
    "tasks": "list the tasks",
    "zero-shot": "classify unseen classes by their attributes: hf-finetune zero-shot --model RUN --classes T --data D",
}


def train_main(argv: list[str], task: str | None = None, prog: str = "hf-finetune train") -> int:
    from .config import parse_config
    from .training import run

    if any(a in ("-h", "--help") for a in argv):
        from .config import ConfigParser

        ConfigParser(prog=prog).print_help()
        return EXIT_OK
    cfg = parse_config(argv, task=task, prog=prog)
    if cfg.run.cv_folds:
        from .cross_validation import run_cv

        run_cv(cfg)
    else:
        run(cfg)
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message}. Run `{self.prog} --help` for usage")


def _inference_parser(command: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"hf-finetune {command}", description=COMMANDS[command])
    parser.add_argument("--model", required=True, help="Folder of a trained model (the run's output_dir).")
    parser.add_argument("--text_column", "--text-column", default="text", help="Column with the input text.")
    parser.add_argument("--text_pair_column", "--text-pair-column", help="Second text column for pair inputs.")
    return parser


def pretrain_main(argv: list[str]) -> int:
    from .pretrain import pretrain

    if any(a in ("-h", "--help") for a in argv):
        from .config import ConfigParser

        print("hf-finetune pretrain [--key value ...]: the `vit_fashion_source` recipe; any train option overrides it")
        ConfigParser(prog="hf-finetune pretrain").print_help()
        return EXIT_OK
    from .training import setup_logging

    setup_logging(is_main=True)
    out = pretrain(argv)
    print(f"pretrained ViT: {out}")
    return EXIT_OK


def evaluate_main(argv: list[str]) -> int:
    from .inference import evaluate_file
    from .outputs import write_json

    parser = _inference_parser("evaluate")
    parser.add_argument(
        "--data", required=True, help="Labelled file: .csv, .tsv, .json, .jsonl, .parquet (or .conll/.txt for tags)."
    )
    parser.add_argument(
        "--label_column", "--label-column", default="label", help="Column with the gold label (or number)."
    )
    parser.add_argument("--tokens_column", "--tokens-column", default="tokens", help="Token classification: words.")
    parser.add_argument("--tags_column", "--tags-column", default="ner_tags", help="Token classification: BIO tags.")
    parser.add_argument("--output", help="Also write the metrics to this JSON file.")
    args = parser.parse_args(argv)
    result = evaluate_file(
        args.model, args.data, args.text_column, args.label_column, args.text_pair_column,
        tokens_column=args.tokens_column, tags_column=args.tags_column,
    )  # fmt: skip
    headline = ", ".join(f"{k.replace('_', ' ')} {result[k]:.4f}" for k in result["main"])
    print(f"{result['examples']} examples: {headline}")
    for name, scores in result.get("per_class", {}).items():
        print(
            f"  {name:<20} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  f1 {scores['f1']:.3f}  "
            f"n={scores['support']}"
        )
    if args.output:
        write_json(Path(args.output), result)
    return EXIT_OK


def predict_main(argv: list[str]) -> int:
    from .inference import check_prediction_output, read_inputs, write_predictions

    parser = _inference_parser("predict")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="File of texts: .csv, .tsv, .json, .jsonl or .parquet.")
    source.add_argument("--text", action="append", help="A text to label (repeatable).")
    parser.add_argument("--output", help="Write predictions here (.csv or .jsonl). Default: JSONL on stdout.")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=32)
    parser.add_argument(
        "--trust-model", "--trust_model", dest="trust_model", action="store_true",
        help="Classical model folders: load a model.skops that names types outside skops' trusted set.",
    )  # fmt: skip
    parser.add_argument(
        "--task", action="append",
        help="Multi-task model folders: the head(s) to predict with (repeatable or comma-separated; `all`, the "
        "default, for every head). An image model reads image file paths from the input column.",
    )  # fmt: skip
    args = parser.parse_args(argv)
    check_prediction_output(args.output)
    if args.input:
        texts, pairs, _ = read_inputs(args.input, args.text_column, args.text_pair_column)
    else:
        texts, pairs = args.text, None
    predictions = _predict(args, texts, pairs)
    rows = [
        {"text": t, **({"text_pair": pairs[i]} if pairs else {}), **p}
        for i, (t, p) in enumerate(zip(texts, predictions, strict=True))
    ]
    write_predictions(rows, args.output)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


def config_with_command_flags(parser: argparse.ArgumentParser, argv: list[str]):
    """(command flags, run config): the command's own flags, then every train option (`--config RECIPE`,
    `--text_column`, `--max_train_samples`, ...) through the same parser as `hf-finetune train`.
    `args.models` is the list of `--model` values (repeated or comma-separated)."""
    from .config import parse_config
    from .features import parse_models

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


def features_main(argv: list[str]) -> int:
    from .features import POOLINGS, features_for_config

    parser = _Parser(
        prog="hf-finetune features",
        description=COMMANDS["features"] + ". Any `hf-finetune train` option (--config RECIPE, --text_column, "
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
    from .training import setup_logging

    setup_logging(is_main=True)
    models = args.models or [cfg.model.model_name_or_path]
    sets, reused = features_for_config(
        cfg, models, args.out, pooling=args.pooling, batch_size=args.batch_size, overwrite=args.overwrite
    )
    shapes = ", ".join(f"{split} {fs.features.shape[0]}x{fs.features.shape[1]}" for split, fs in sets.items())
    print(f"{'reused' if reused else 'wrote'} features in {args.out}: {shapes}")
    return EXIT_OK


def classical_main(argv: list[str]) -> int:
    from .classical import HEADS, run_classical

    parser = _Parser(prog="hf-finetune classical", description=COMMANDS["classical"], allow_abbrev=False)
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
    from .training import setup_logging

    setup_logging(is_main=True)
    report = run_classical(
        args.features, args.head, Path(args.out), cv=args.cv, grid_c=args.grid_c, seed=args.seed,
        overwrite=args.overwrite,
    )  # fmt: skip
    print(report["markdown"])
    print(f"model saved to {args.out}; predict with: hf-finetune predict --model {args.out} --text ...")
    return EXIT_OK


def _predict(args, texts: list[str], pairs: list[str] | None) -> list[dict]:
    """A fine-tuned model through `transformers.pipeline`; a classical model folder (`hf-finetune classical`)
    through its backbone(s) and scikit-learn pipeline."""
    from .classical import ClassicalPredictor, is_classical_folder
    from .inference import load_pipeline, predict_texts
    from .multitask import is_multitask_folder

    if is_multitask_folder(args.model):
        return _predict_multitask(args, texts, pairs)
    if args.task:
        raise UserError(f"--task picks a head of a multi-task model; {args.model} has one head: drop --task")
    if is_classical_folder(args.model):
        if pairs:
            raise UserError("a classical model reads one text per row; drop --text_pair_column")
        predictor = ClassicalPredictor(args.model, trust=args.trust_model, batch_size=args.batch_size)
        if predictor.info.get("modality") != "text":
            raise UserError(f"{args.model} is an image model and `predict` reads text; use ClassicalPredictor.predict")
        return predictor.predict(texts)
    return predict_texts(load_pipeline(args.model, batch_size=args.batch_size), texts, pairs)


def _predict_multitask(args, values: list[str], pairs: list[str] | None) -> list[dict]:
    """A multi-task folder: the chosen heads' labels and probabilities; image models read image paths,
    relative ones from the input file's folder."""
    from .multitask import MultiTaskPredictor

    if pairs:
        raise UserError("a multi-task model reads one text per row; drop --text_pair_column")
    predictor = MultiTaskPredictor(args.model, batch_size=args.batch_size)
    tasks = [t.strip() for value in args.task or ["all"] for t in value.split(",") if t.strip()]
    tasks = predictor.check_tasks(None if tasks == ["all"] else tasks)
    if predictor.modality == "image":
        base = Path(args.input).expanduser().resolve().parent if args.input else Path.cwd()
        values = [str(base / v) for v in values]
    return predictor.predict(values, tasks)


def compare_main(argv: list[str]) -> int:
    from .compare import DEFAULT_METHODS, DEFAULT_MIN_STEPS, Comparison, markdown_table, parse_list
    from .features import POOLINGS

    parser = _Parser(
        prog="hf-finetune compare",
        description=COMMANDS["compare"] + ". Any other `hf-finetune train` option (--max_train_samples, "
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
    from .training import setup_logging

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
        from .transfer_report import write_report

        report = write_report(
            comparison.out,
            rows,
            metric=args.metric,
            title=comparison.title(),
            advice=args.advice,
        )
        print(f"transfer report: {report / 'report.md'} and {report / 'report.html'}")
    return EXIT_OK


def merge_main(argv: list[str]) -> int:
    from .adapters import merge_adapter_folder

    parser = _Parser(prog="hf-finetune merge", description=COMMANDS["merge"])
    parser.add_argument("--model", required=True, help="Output folder of a lora/ia3 run (holds adapter_config.json).")
    parser.add_argument("--out", required=True, help="New folder for the merged, plain transformers model.")
    args = parser.parse_args(argv)
    out = merge_adapter_folder(args.model, args.out)
    print(f'merged model written to {out}; load it with pipeline(model="{out}")')
    return EXIT_OK


def push_main(argv: list[str]) -> int:
    from .hub import push_folder

    parser = _Parser(
        prog="hf-finetune push",
        description=COMMANDS["push"] + ". The token comes from HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument("--model", required=True, help="Output folder of a finished run (holds run_complete.json).")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="`user/name` or `org/name`.")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private", dest="private", action="store_true", default=True, help="Private repo (the default)."
    )
    visibility.add_argument("--public", dest="private", action="store_false", help="Public repo.")
    parser.add_argument("--revision", help="Branch to push to (created if missing). Default: main.")
    parser.add_argument("--commit-message", "--commit_message", help="Default: names the strategy and the main metric.")
    parser.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="Stage the upload folder and list its files; no token or network needed.",
    )
    parser.add_argument(
        "--allow-private-data-public",
        "--allow_private_data_public",
        action="store_true",
        help="Allow --public for a model trained on private data (local files unless data_private: false).",
    )
    args = parser.parse_args(argv)
    push_folder(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        allow_private_data_public=args.allow_private_data_public,
        dry_run=args.dry_run,
    )
    return EXIT_OK


def _guess_task(model: str) -> str:
    """image_classification for a checkpoint with an image processor and no tokenizer, else text."""
    from .modeling import TOKENIZER_FILES, resolve_checkpoint

    folder = Path(resolve_checkpoint(model))
    has = lambda name: (folder / name).is_file()  # noqa: E731
    image = has("preprocessor_config.json") and not any(has(f) for f in TOKENIZER_FILES)
    return "image_classification" if image else "text_classification"


def advise_main(argv: list[str]) -> int:
    from .advisor import DEFAULT_SAMPLE, advise, data_values, write_recipe
    from .config import load_recipe, resolve_recipe_path
    from .outputs import write_json

    parser = _Parser(prog="hf-finetune advise", description=COMMANDS["advise"])
    parser.add_argument("--model", help="Checkpoint: Hub id, folder or packaged:... (default: the recipe's).")
    parser.add_argument(
        "--data", help="Labelled data: a file, a dataset folder, a Hub id or packaged:... (default: the recipe's)."
    )
    parser.add_argument("--config", help="Recipe to start from; the recommended recipe keeps its other settings.")
    parser.add_argument(
        "--task",
        choices=("text_classification", "image_classification"),
        help="Default: the recipe's, else guessed from the checkpoint.",
    )
    parser.add_argument(
        "--reference-data",
        "--reference_data",
        dest="reference",
        help="A sample of the checkpoint's source domain, for the proxy A-distance.",
    )
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help=f"Examples to measure on (default {DEFAULT_SAMPLE})."
    )
    parser.add_argument(
        "--pooling",
        choices=("cls", "mean"),
        default="cls",
        help="How a feature vector is pooled (cls: what the head sees).",
    )
    parser.add_argument("--text_column", "--text-column")
    parser.add_argument("--label_column", "--label-column")
    parser.add_argument("--image_column", "--image-column")
    parser.add_argument(
        "--out",
        default="advised_recipe.yaml",
        help="Where the recommended recipe goes; the measurements go beside it as .json.",
    )
    args = parser.parse_args(argv)
    if args.sample < 20:
        raise UserError(
            f"--sample must be at least 20 (a 5-fold probe needs a few examples per class), got {args.sample}"
        )
    out = Path(args.out)
    if out.is_dir() or out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out must be a .yaml file path, got {args.out}")
    values = load_recipe(resolve_recipe_path(args.config)) if args.config else {}
    if args.model:
        values["model_name_or_path"] = args.model
    if args.data:
        values.update(data_values(args.data))
    if not values.get("model_name_or_path") or not (values.get("dataset_name") or values.get("train_file")):
        raise UserError("advise needs a checkpoint and data: pass --model and --data (or a --config that names them)")
    for key in ("text_column", "label_column", "image_column"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    values["task"] = args.task or values.get("task") or _guess_task(values["model_name_or_path"])
    advice = advise(values, base_name=args.config, sample=args.sample, reference=args.reference, pooling=args.pooling)
    m, rec = advice.measurements, advice.recommendation
    print(f"quadrant: {rec.quadrant}")
    settings = ", ".join(f"{k} {v}" for k, v in rec.hyperparameters.items())
    print(f"recommended strategy: {rec.strategy}" + (f" ({settings})" if settings else ""))
    print("because:")
    for reason in rec.reasons:
        print(f"  - {reason}")
    write_recipe(out, advice.recipe, rec)
    write_json(out.with_suffix(".json"), {"measurements": dataclasses.asdict(m), "recommendation": rec.as_dict(),
                                          "seconds": advice.seconds})  # fmt: skip
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in advice.seconds.items())
    print(f"recipe written to {out} (run it: hf-finetune train --config {out}); measured in {timing}")
    return EXIT_OK


def listing_main(command: str) -> int:
    if command == "recipes":
        from .config import list_recipes

        recipes = list_recipes()
        width = max(map(len, recipes), default=0) + 2
        for name, path in recipes.items():
            first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
            print(f"{name:<{width}} {first}")
    else:
        from .strategies import STRATEGIES
        from .tasks import TASKS

        registry = STRATEGIES if command == "strategies" else TASKS
        for name, cls in registry.all().items():
            print(f"{name:<20} {cls.summary}")
    return EXIT_OK


def zero_shot_main(argv: list[str]) -> int:
    from .outputs import write_json
    from .zero_shot import PRIORS, format_report, zero_shot_evaluate

    parser = _Parser(
        prog="hf-finetune zero-shot",
        description=COMMANDS["zero-shot"] + ". Direct attribute prediction (Lampert et al.): the attribute model "
        "(a --multi_label true image run on the seen classes) scores each unseen class's attribute description.",
        allow_abbrev=False,
    )
    parser.add_argument("--model", required=True, help="Output folder of a multi-label attribute run.")
    parser.add_argument(
        "--classes", required=True,
        help="Class table: a .yaml with `unseen:` (and optional `seen:`) mapping classes to attribute lists, "
        "a .csv with columns class,split (seen/unseen) and one 0/1 column per attribute, or packaged:fashion-mnist.",
    )  # fmt: skip
    parser.add_argument(
        "--data", required=True, help="Labelled images: packaged:NAME, a dataset or image folder, or a file of paths."
    )
    parser.add_argument("--split", default="test", help="Split of --data to score (default test).")
    parser.add_argument("--image_column", "--image-column", default="image")
    parser.add_argument("--label_column", "--label-column", default="label", help="Column with the class names.")
    parser.add_argument(
        "--prior", choices=PRIORS, default="seen",
        help="Attribute priors p(a): the seen classes' mean attribute vector (default), or none.",
    )  # fmt: skip
    parser.add_argument("--batch_size", "--batch-size", type=int, default=128)
    parser.add_argument("--output", help="JSON report. Default: zero_shot.json in --model.")
    args = parser.parse_args(argv)
    output = Path(args.output) if args.output else Path(args.model) / "zero_shot.json"
    if output.suffix != ".json":
        raise UserError(f"--output must end in .json, got {output}")
    from .training import setup_logging

    setup_logging(is_main=True)
    report = zero_shot_evaluate(
        args.model, args.classes, args.data, split=args.split, image_column=args.image_column,
        label_column=args.label_column, prior=args.prior, batch_size=args.batch_size,
    )  # fmt: skip
    print(format_report(report))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, report)
    print(f"report written to {output}")
    return EXIT_OK


def usage() -> str:
    lines = ["usage: hf-finetune COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run `hf-finetune COMMAND --help` for a command's options."]
    return "\n".join(lines)


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        return train_main(rest)
    if command == "pretrain":
        return pretrain_main(rest)
    if command == "evaluate":
        return evaluate_main(rest)
    if command == "predict":
        return predict_main(rest)
    if command == "merge":
        return merge_main(rest)
    if command == "compare":
        return compare_main(rest)
    if command == "features":
        return features_main(rest)
    if command == "classical":
        return classical_main(rest)
    if command == "push":
        return push_main(rest)
    if command == "advise":
        return advise_main(rest)
    if command == "rank":
        from .cli_rank import rank_main

        return rank_main(rest)
    if command in ("recipes", "strategies", "tasks"):
        return listing_main(command)
    if command in ("zero-shot", "zero_shot"):
        return zero_shot_main(rest)
    raise UserError(f"unknown command '{command}'; commands: {', '.join(COMMANDS)}")


def run_guarded(fn, *args) -> int:
    """Turn UserError into one line on stderr and exit code 2, everything else stays a traceback."""
    try:
        return fn(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # silence fork warnings from the Rust tokenizer
    return run_guarded(dispatch, sys.argv[1:] if argv is None else argv)


def task_entry_point(task: str, argv: list[str] | None = None) -> int:
    """What `tasks/<task>.py` runs: `train` with the task fixed."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    prog = f"tasks/{task}.py"
    return run_guarded(train_main, sys.argv[1:] if argv is None else argv, task, prog)


if __name__ == "__main__":
    sys.exit(main())
