"""`hf-finetune predict`, `evaluate` and `export`: use a finished model folder (bodies in `deploy_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_finetune.cli.common import model_parser
from hf_finetune.cli.deploy_commands import export_command, run_evaluate, run_predict
from hf_finetune.errors import EXIT_OK
from hf_finetune.outputs import write_json
from hf_finetune.settings.precision import PRECISIONS


def inference_parser(command: str) -> argparse.ArgumentParser:
    parser = model_parser(command)
    parser.add_argument(
        "--image_column", "--image-column", help="Image models: the column of image paths (default: image)."
    )
    parser.add_argument("--split", default="test", help="Image models given a data set: the split to read.")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=32)
    parser.add_argument("--int8", action="store_true", help="Export folders: run model_int8.onnx instead of fp32.")
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="PyTorch model folders: auto (what training would choose on this machine: bf16 autocast on CPUs with "
        "native bf16, unless the model's run asked for fp32), fp32, bf16 or fp16 (GPUs).",
    )  # fmt: skip
    return parser


def evaluate_main(argv: list[str]) -> int:
    parser = inference_parser("evaluate")
    parser.add_argument(
        "--data", required=True,
        help="Labelled data: .csv, .tsv, .json, .jsonl, .parquet (or .conll/.txt for tags); image models also an "
        "image folder with one sub-folder per class, or a data set (packaged:NAME, saved folder; see --split).",
    )  # fmt: skip
    parser.add_argument(
        "--label_column", "--label-column",
        help="Column with the gold label (or number); default label (multi-task: the run's column for --task, "
        "then a column named as the task, then label).",
    )  # fmt: skip
    parser.add_argument("--task", action="append", help="Multi-task model folders: the head to score (one).")
    parser.add_argument("--tokens_column", "--tokens-column", default="tokens", help="Token classification: words.")
    parser.add_argument("--tags_column", "--tags-column", default="ner_tags", help="Token classification: BIO tags.")
    parser.add_argument("--output", help="Also write the metrics to this JSON file.")
    args = parser.parse_args(argv)
    result = run_evaluate(args)
    headline = ", ".join(f"{k.replace('_', ' ')} {result[k]:.4f}" for k in result["main"])
    task = f" (task {result['task']}, gold column {result['label_column']})" if "task" in result else ""
    print(f"{result['examples']} examples{task}: {headline}")
    for name, scores in result.get("per_class", {}).items():
        print(
            f"  {name:<20} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  f1 {scores['f1']:.3f}  "
            f"n={scores['support']}"
        )
    if args.output:
        write_json(Path(args.output), result)
    return EXIT_OK


def predict_main(argv: list[str]) -> int:
    parser = inference_parser("predict")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", help="File of texts (.csv, .tsv, .json, .jsonl, .parquet); image models: an image, an image "
        "folder, a file of image paths (--image_column) or a data set (packaged:NAME, saved folder; --split).",
    )  # fmt: skip
    source.add_argument("--text", action="append", help="A text to label (repeatable).")
    parser.add_argument("--output", help="Write predictions here (.csv or .jsonl). Default: JSONL on stdout.")
    parser.add_argument(
        "--trust-model", "--trust_model", dest="trust_model", action="store_true",
        help="Classical model folders: load a model.skops that names types outside skops' trusted set.",
    )  # fmt: skip
    parser.add_argument(
        "--task", action="append",
        help="Multi-task model folders: the head(s) to predict with (repeatable or comma-separated; `all`, the "
        "default, for every head).",
    )  # fmt: skip
    run_predict(parser.parse_args(argv))
    return EXIT_OK


def export_main(argv: list[str]) -> int:
    return export_command(argv)
