"""`hf-finetune predict` and `hf-finetune evaluate`: use a finished model folder."""

from __future__ import annotations

import sys
from pathlib import Path

from hf_finetune.analysis.classical import ClassicalPredictor, is_classical_folder
from hf_finetune.cli.common import model_parser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.inference.pipeline import (
    check_prediction_output,
    evaluate_file,
    load_model_pipeline,
    predict_texts,
    read_inputs,
    write_predictions,
)
from hf_finetune.outputs import write_json
from hf_finetune.tasks.multi_task import MultiTaskPredictor, is_multitask_folder


def evaluate_main(argv: list[str]) -> int:

    parser = model_parser("evaluate")
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

    parser = model_parser("predict")
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


def _predict(args, texts: list[str], pairs: list[str] | None) -> list[dict]:
    """A fine-tuned model through `transformers.pipeline`; a classical model folder (`hf-finetune classical`)
    through its backbone(s) and scikit-learn pipeline."""

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
    return predict_texts(load_model_pipeline(args.model, batch_size=args.batch_size), texts, pairs)


def _predict_multitask(args, values: list[str], pairs: list[str] | None) -> list[dict]:
    """A multi-task folder: the chosen heads' labels and probabilities; image models read image paths,
    relative ones from the input file's folder."""

    if pairs:
        raise UserError("a multi-task model reads one text per row; drop --text_pair_column")
    predictor = MultiTaskPredictor(args.model, batch_size=args.batch_size)
    tasks = [t.strip() for value in args.task or ["all"] for t in value.split(",") if t.strip()]
    tasks = predictor.check_tasks(None if tasks == ["all"] else tasks)
    if predictor.modality == "image":
        base = Path(args.input).expanduser().resolve().parent if args.input else Path.cwd()
        values = [str(base / v) for v in values]
    return predictor.predict(values, tasks)
