"""The bodies of `hf-finetune predict`, `evaluate` and `export` (`cli/predict.py` parses their flags).

Every model folder the suite writes is accepted: a fine-tuned or adapter (lora, ia3) folder and an export
folder go through the fast path (`predictor`); multi-task and classical-head folders through their own
predictors; text or images by what the folder holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hf_finetune.analysis.classical import classical_info, is_classical_folder
from hf_finetune.analysis.classical_export import export_classical, load_classical
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import classification_scores, per_class_report
from hf_finetune.inference.backends import PROCESSOR_FILES, TOKENIZER_FILES, is_export_folder, load_for_inference
from hf_finetune.inference.image_inputs import open_image, read_image_inputs
from hf_finetune.inference.multitask import evaluate_multitask, load_multitask
from hf_finetune.inference.multitask_export import export_multitask
from hf_finetune.inference.onnx_export import DEFAULT_TOLERANCE, MAX_INT8_DROP, export_model
from hf_finetune.inference.pipeline import check_prediction_output, gold_label_ids, read_inputs, write_predictions
from hf_finetune.inference.predictor import Predictor
from hf_finetune.inference.scoring import evaluate_path
from hf_finetune.tasks.multi_task import is_multitask_folder

IMAGE_CHUNK = 256  # images opened at once for the multi-task and classical predictors (bounded memory)


def folder_modality(folder: Path) -> str:
    """`text` or `image`: what the model folder reads (a tokenizer, or only an image processor)."""
    if is_classical_folder(folder):
        return classical_info(folder).get("modality") or "text"
    has = lambda names: any((folder / n).is_file() for n in names)  # noqa: E731
    return "image" if has(PROCESSOR_FILES) and not has(TOKENIZER_FILES) else "text"


def _tasks(args) -> list[str] | None:
    tasks = [t.strip() for value in args.task or ["all"] for t in value.split(",") if t.strip()]
    return None if tasks == ["all"] else tasks


def through_chunks(predict, sources: list) -> list[dict]:
    """Rows from a predictor that takes PIL images, opening images a chunk at a time; unreadable -> error row."""
    rows: list[dict] = []
    for start in range(0, len(sources), IMAGE_CHUNK):
        opened = [open_image(s) for s in sources[start : start + IMAGE_CHUNK]]
        images = [image for image, _ in opened if image is not None]
        predicted = iter(predict(images) if images else [])
        rows += [next(predicted) if image is not None else {"error": reason} for image, reason in opened]
    return rows


def image_columns(args) -> tuple[str, ...]:
    """--image_column when given; else `image`, then --text_column (paths in a text column: how multi-task image
    folders were predicted before image models had their own flag)."""
    return (args.image_column,) if args.image_column else ("image", args.text_column)


def predict_images(args, folder: Path) -> list[dict]:
    if args.text:
        raise UserError(f"{folder} is an image model: pass --input with an image, an image folder or a file of paths")
    inputs = read_image_inputs(args.input, image_columns(args), args.split)
    if is_multitask_folder(folder):
        predictor = load_multitask(folder, args.batch_size, int8=args.int8, precision=args.precision)
        tasks = predictor.check_tasks(_tasks(args))
        predictions = through_chunks(lambda images: predictor.predict(images, tasks), inputs.sources)
    elif is_classical_folder(folder):
        predictor = load_classical(folder, trust=args.trust_model, batch_size=args.batch_size, int8=args.int8)
        predictions = through_chunks(predictor.predict, inputs.sources)
    else:
        predictions = Predictor(
            load_for_inference(str(folder), int8=args.int8, precision=args.precision), args.batch_size
        ).predict_images(inputs.sources)
    return [{"image": name, **p} for name, p in zip(inputs.names, predictions, strict=True)]


def predict_texts(args, folder: Path) -> list[dict]:
    if args.input:
        texts, pairs, _ = read_inputs(args.input, args.text_column, args.text_pair_column)
    else:
        texts, pairs = args.text, None
    if (is_multitask_folder(folder) or is_classical_folder(folder)) and pairs:
        raise UserError(f"{folder} reads one text per row; drop --text_pair_column")
    if is_multitask_folder(folder):
        predictor = load_multitask(folder, args.batch_size, int8=args.int8, precision=args.precision)
        predictions = predictor.predict(texts, predictor.check_tasks(_tasks(args)))
    elif is_classical_folder(folder):
        predictor = load_classical(folder, trust=args.trust_model, batch_size=args.batch_size, int8=args.int8)
        predictions = predictor.predict(texts)
    else:
        predictor = Predictor(
            load_for_inference(str(folder), int8=args.int8, precision=args.precision), args.batch_size
        )
        predictions = predictor.predict_texts(texts, pairs)
    return [
        {"text": t, **({"text_pair": pairs[i]} if pairs else {}), **p}
        for i, (t, p) in enumerate(zip(texts, predictions, strict=True))
    ]


def run_predict(args) -> None:
    """`hf-finetune predict`: rows of the input with the model's predictions, to a file or stdout."""
    check_prediction_output(args.output)
    folder = Path(args.model).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {args.model} does not exist")
    if args.task and not is_multitask_folder(folder):
        raise UserError(f"--task picks a head of a multi-task model; {args.model} has one head: drop --task")
    if args.int8 and not is_export_folder(folder):
        raise UserError(
            f"--int8 runs an export folder's int8 model; {args.model} is not one (see `hf-finetune export`)"
        )
    image = folder_modality(folder) == "image"
    rows = predict_images(args, folder) if image else predict_texts(args, folder)
    write_predictions(rows, args.output)
    unreadable = sum(1 for r in rows if "error" in r)
    if unreadable:
        print(f"{unreadable} of {len(rows)} images could not be read: see the `error` column", file=sys.stderr)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)


def evaluate_classical(args, folder: Path) -> dict:
    """A classical-head folder on labelled texts or images: accuracy, macro F1 and per-class scores."""
    predictor = load_classical(folder, batch_size=args.batch_size, int8=args.int8)
    index = {name: i for i, name in enumerate(predictor.info["label_names"])}
    if folder_modality(folder) == "image":
        inputs = read_image_inputs(args.data, image_columns(args), args.split)
        values = inputs.labels if inputs.labels is not None else inputs.columns.get(args.label_column)
        rows = through_chunks(predictor.predict, inputs.sources)
    else:
        texts, _, dataset = read_inputs(args.data, args.text_column, None)
        values = dataset[args.label_column] if args.label_column in dataset.column_names else None
        rows = predictor.predict(texts)
    if values is None:
        raise UserError(f"{args.data} has no gold labels: pass --label_column (or a folder of class sub-folders)")
    kept = [i for i, row in enumerate(rows) if "error" not in row]
    gold = gold_label_ids([values[i] for i in kept], index)
    predicted = [index[rows[i]["label"]] for i in kept]
    result = {"examples": len(kept), "main": ("accuracy", "macro_f1"), **classification_scores(gold, predicted),
              **per_class_report(gold, predicted, list(index))}  # fmt: skip
    if len(kept) < len(rows):
        result["unreadable"] = {i: rows[i]["error"] for i in range(len(rows)) if "error" in rows[i]}
    return result


def run_evaluate(args) -> dict:
    """`hf-finetune evaluate`: the model's scores on labelled data (text file, image folder/file, data set)."""

    folder = Path(args.model).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {args.model} does not exist")
    if is_multitask_folder(folder):
        columns = {"text_column": args.text_column, "label_column": args.label_column,
                   "image_column": image_columns(args)}  # fmt: skip
        predictor = load_multitask(folder, args.batch_size, int8=args.int8, precision=args.precision)
        return evaluate_multitask(predictor, args.data, _tasks(args), columns, split=args.split)
    if args.task:
        raise UserError(f"--task picks a head of a multi-task model; {args.model} has one head: drop --task")
    args.label_column = args.label_column or "label"  # None above: a multi-task head looks for the run's column
    if is_classical_folder(folder):
        return evaluate_classical(args, folder)
    predictor = Predictor(load_for_inference(str(folder), int8=args.int8, precision=args.precision), args.batch_size)
    columns = {k: getattr(args, k) for k in ("text_column", "text_pair_column", "label_column", "tokens_column",
                                             "tags_column")}  # fmt: skip
    columns["image_column"] = image_columns(args)
    return {**evaluate_path(predictor, args.data, columns, split=args.split), "engine": predictor.loaded.backend.engine}


def export_command(argv: list[str]) -> int:
    """`hf-finetune export --model DIR --out DIR2 [--format onnx] [--quantize int8]`."""

    parser = CommandParser(prog="hf-finetune export", description="Export a trained text or image classifier (merged "
                    "LoRA/IA3 included; a multi-task model as one graph with one output per task; a classical-head "
                    "folder as one graph per backbone plus its scikit-learn head) to ONNX, check it "
                    "against PyTorch on held-out rows, optionally quantise it to int8; writes the ONNX file(s), config "
                    "with labels, tokenizer or image processor and export_report.json.")  # fmt: skip
    parser.add_argument("--model", required=True, help="A trained model folder (a run's output_dir).")
    parser.add_argument("--out", required=True, help="New (or empty) folder for the export.")
    parser.add_argument("--format", default="onnx", help="Export format: onnx (the only one today).")
    parser.add_argument("--quantize", help="Also write a dynamic int8 model (model_int8.onnx): int8.")
    parser.add_argument("--data", help="Rows to check parity on (default: the run's test or validation rows).")
    parser.add_argument("--samples", type=int, default=200, help="Parity rows used (default 200).")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"Largest fp32 |logit| difference against PyTorch accepted (default {DEFAULT_TOLERANCE:g}).",
    )
    parser.add_argument("--accept-int8-drop", "--accept_int8_drop", dest="accept_int8_drop", action="store_true",
                        help=f"Keep the int8 model even when it loses more than {MAX_INT8_DROP:g} point of the "
                        "main metric (a warning is written to the report).")  # fmt: skip
    for flag in ("text_column", "text_pair_column", "label_column", "image_column", "tokens_column", "tags_column"):
        parser.add_argument(f"--{flag}", f"--{flag.replace('_', '-')}", help="Column of --data (default: the run's).")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    columns = {k: getattr(args, k) for k in ("text_column", "text_pair_column", "label_column", "image_column",
                                             "tokens_column", "tags_column")}  # fmt: skip
    folder = Path(args.model).expanduser()
    exporter = export_model
    if is_classical_folder(folder):
        exporter = export_classical
    elif is_multitask_folder(folder):
        exporter = export_multitask
    report = exporter(args.model, args.out, args.format, args.quantize, args.data, columns, args.samples,
                      args.tolerance, args.accept_int8_drop, args.batch_size)  # fmt: skip
    print(format_report(report, args.out))
    if report["int8"] and report["int8"]["refused"]:
        raise UserError(f"{report['int8']['refused']}: the int8 model was not kept (the fp32 export is in {args.out}); "
                        "pass --accept-int8-drop to keep it anyway")  # fmt: skip
    return 0


def format_report(report: dict, out: str) -> str:
    fp32, int8 = report["fp32"], report["int8"]
    rows = report["parity_rows"]
    if "max_abs_feature_diff_vs_pytorch" in fp32:  # a classical head: features from PyTorch, head from scikit-learn
        diff = (f"max |feature - PyTorch| {fp32['max_abs_feature_diff_vs_pytorch']:.2e}, max |score - scikit-learn| "
                f"{fp32['max_abs_score_diff_vs_sklearn']:.2e}")  # fmt: skip
    else:
        diff = f"max |logit - PyTorch| {fp32['max_abs_logit_diff_vs_pytorch']:.2e}"
    lines = [f"exported to {out} ({fp32['size_mb']} MB fp32); parity on {rows['count']} rows of {rows['source']}:",
             f"  fp32: {diff} (tolerance {fp32['tolerance']:g}); {fp32['metric']} {fp32['onnx']:.2f} (PyTorch "
             f"{fp32['pytorch']:.2f})"]  # fmt: skip
    if int8:
        state = "REFUSED" if int8["refused"] else ("kept with a warning" if int8["warning"] else "ok")
        lines.append(f"  int8: {int8['metric']} {int8['int8']:.2f} ({-int8['drop_points']:+.2f} points vs fp32, "
                     f"{int8['size_mb']} MB): {state}")  # fmt: skip
    task = " [--task NAME|all]" if report["head"] == "multi_task" else ""
    lines.append(f"predict with: hf-finetune predict --model {out} --input FILE{task}" + (" [--int8]" if int8 else ""))
    return "\n".join(lines)
