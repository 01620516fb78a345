"""`hf-finetune export`: a trained model folder -> ONNX (fp32, optionally dynamic int8), checked, in one folder.

Why `torch.onnx.export` and not optimum: `optimum-onnx` 0.1.0, the only release, requires
transformers < 4.58, and this suite runs on transformers 5.x; `optimum` 2.x alone no longer exports. Text
models go through the TorchScript exporter (its graph runs int8 1.8x faster, TEXT_EXPORTER), images and
multi-task encoders through the dynamo exporter, both with dynamic batch (and sequence) axes; onnxruntime's
`quantize_dynamic` makes the int8 file (weights int8, activations quantised per batch at run time: no
calibration data needed). See docs/deployment.md for the measured speed and accuracy.

The export is written to `<out>.partial` and renamed at the end: a failed check leaves nothing at `out`.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError
from hf_finetune.inference.backends import (
    EXPORT_REPORT,
    ONNX_FP32,
    ONNX_INT8,
    Loaded,
    OnnxBackend,
    TorchBackend,
    check_model_folder,
    head_kind,
    is_export_folder,
    load_preprocessors,
    load_torch_model,
)
from hf_finetune.inference.image_inputs import open_image
from hf_finetune.inference.parity import all_logits, main_metric, max_abs_diff, parity_rows
from hf_finetune.inference.postprocess import model_kind
from hf_finetune.inference.predictor import Predictor
from hf_finetune.modeling.adapters import is_adapter_folder
from hf_finetune.modeling.attention import use_attention
from hf_finetune.outputs import write_json

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
# fp32 ONNX against PyTorch: measured differences are ~1e-6 (MiniLM, ViT); 1e-3 still catches a wrong graph
# (a missing mask, a dropped input) by orders of magnitude while allowing other kernels' summation order.
DEFAULT_TOLERANCE = 1e-3
MAX_INT8_DROP = 1.0  # points of the main metric int8 may lose against fp32 before it is refused
OPSET = 18
EXPORTER = f"torch.onnx.export(dynamo=True, opset_version={OPSET})"
# Text models go through the TorchScript exporter: measured on the bench MiniLM (551 test texts, 2 threads),
# its graph ran int8 at 423 texts/s against 229 for the dynamo graph (fp32: 200 vs 143), at the same
# accuracy (docs/deployment.md). Images and multi-task encoders keep the dynamo exporter (EXPORTER).
TEXT_EXPORTER = f"torch.onnx.export(dynamo=False, opset_version={OPSET})"


def check_request(folder: Path, out: Path, fmt: str, quantize: str | None) -> str:
    """The head kind to export, after every check that costs nothing (before any model loads)."""
    check_target(folder, out, fmt, quantize)
    kind = head_kind(check_model_folder(folder), folder)
    check_out(out)
    return kind


def check_export_request(folder: Path, out: Path, fmt: str, quantize: str | None, samples: int) -> None:
    """The checks of a folder-level export (multi-task, classical) before it loads anything."""
    check_target(folder, out, fmt, quantize)
    check_out(out)
    if samples < 2:
        raise UserError(f"--samples must be at least 2, got {samples}")


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} already exists and is not empty; choose a new folder")


def check_target(folder: Path, out: Path, fmt: str, quantize: str | None) -> None:
    """The checks every export makes first: format, quantisation, a model folder that is not an export."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'; supported: {', '.join(FORMATS)}")
    if quantize not in (None, *QUANTIZATIONS):
        raise UserError(f"unknown quantisation '{quantize}'; supported: {', '.join(QUANTIZATIONS)}")
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist")
    if is_export_folder(folder):
        raise UserError(f"{folder} is already an export; export the trained model folder it came from")


def export_graph(model, example: dict, path: Path, image: bool, output_names: tuple = ("logits",)) -> None:
    """torch.onnx.export (dynamo) with a dynamic batch axis, and a dynamic sequence axis for text."""
    import torch

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {name: ({0: batch} if image else {0: batch, 1: sequence}) for name in example}
    tensors = {name: torch.as_tensor(value) for name, value in example.items()}
    # "torchvision is not installed. Skipping torchvision::nms" and the like: true, and irrelevant here.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's to act on
        program = torch.onnx.export(
            model.eval(), (), kwargs=tensors, dynamo=True, dynamic_shapes=shapes, input_names=list(tensors),
            output_names=list(output_names), opset_version=OPSET, verbose=False,
        )  # fmt: skip
    program.save(str(path))


def export_text_graph(model, example: dict, path: Path, per_token: bool, output_name: str = "logits") -> None:
    """The TorchScript exporter (TEXT_EXPORTER) with dynamic batch and sequence axes; inputs passed by name,
    so any family's argument order works."""
    import torch

    # Eager attention: the graph whose speed was measured. A trace keeps only the paths its example took, and
    # attention-mask helpers have shortcuts for unpadded batches, so the example pads too (`example_inputs`).
    # BERT traced right with SDPA and with an unpadded example as well (checked); other families may not, and
    # the parity check refuses a graph that does not match PyTorch.
    use_attention(model, "eager")
    # The traced graph's inputs follow forward()'s parameter order, whatever order the tokenizer names them in
    # (fed in the tokenizer's order, token_type_ids and attention_mask swapped places: logits off by 2.7).
    order = list(inspect.signature(model.forward).parameters)
    names = sorted(example, key=lambda n: order.index(n) if n in order else len(order))
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[output_name] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    tensors = {name: torch.as_tensor(example[name]) for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values in the graph: shapes are dynamic
        torch.onnx.export(
            model.eval(), (), str(path), kwargs=tensors, dynamo=False, input_names=names, output_names=[output_name],
            dynamic_axes=axes, opset_version=OPSET,
        )  # fmt: skip


def example_inputs(predictor: Predictor, rows, kind: str) -> dict:
    """Two parity rows as the model's input tensors (`example_tensors`)."""
    loaded = predictor.loaded
    return example_tensors(loaded.tokenizer, loaded.image_processor, rows.inputs, rows.pairs, predictor.max_length,
                           split_words=kind == "token")  # fmt: skip


def example_tensors(tokenizer, image_processor, inputs: list, pairs: list | None = None, max_length: int | None = None,
                    split_words: bool = False) -> dict:  # fmt: skip
    """Two rows (texts, word lists or image sources) as input tensors: two, so batch is not specialised to 1."""
    if tokenizer is None:
        images = [to_rgb(open_image(s)[0] or _blank()) for s in inputs[:2]] * (2 if len(inputs) < 2 else 1)
        return {"pixel_values": image_processor(images=images[:2], return_tensors="np")["pixel_values"]}
    # The shortest and the longest row, so the example pads: a traced graph keeps only the paths its example took.
    lengths = [len(str(x)) for x in inputs]
    pick = [lengths.index(min(lengths)), lengths.index(max(lengths))]
    texts = [inputs[i] for i in pick]
    pairs = [pairs[i] for i in pick] if pairs else None
    encoded = tokenizer(*((texts, pairs) if pairs else (texts,)), truncation=True, padding=True, max_length=max_length,
                        is_split_into_words=split_words, return_tensors="np")  # fmt: skip
    names = [n for n in tokenizer.model_input_names if n in encoded]
    return {n: encoded[n].astype(np.int64) for n in names}


def _blank():
    from PIL import Image

    return Image.new("RGB", (32, 32))


def quantize_int8(source: Path, target: Path, per_channel: bool = False) -> None:
    """Dynamic int8: MatMul/Gemm weights (where transformer encoders spend their time) and embedding tables
    (Gather: most of a small encoder's file) in int8; convolutions stay fp32, as ONNX Runtime's dynamic
    int8 convolutions are slower than its fp32 ones on CPU. `per_channel`: one scale per output channel
    instead of per tensor (what frozen features for a classical head need: docs/deployment.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # heavy optional dependency (`export` extra)

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its pre-processing hint
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel,
                     op_types_to_quantize=["MatMul", "Gemm", "Gather"])  # fmt: skip


def save_preprocessors(loaded: Loaded, staging: Path) -> None:
    loaded.config.save_pretrained(staging)
    (loaded.tokenizer or loaded.image_processor).save_pretrained(staging)


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}  # fmt: skip


def timed_logits(predictor: Predictor, rows, problem: str):
    (logits, encodings), seconds = timed(all_logits, predictor, rows, problem)
    return logits, encodings, seconds


def onnx_predictor(path: Path, like: Loaded, batch_size: int) -> Predictor:
    loaded = Loaded(OnnxBackend(path, like.config), like.config, like.tokenizer, like.image_processor, path.parent)
    return Predictor(loaded, batch_size, quiet=True)


def check_fp32(reference: Predictor, staging: Path, rows, problem: str, tolerance: float) -> tuple[dict, list, object]:
    """fp32 ONNX against PyTorch on the parity rows; a difference above `tolerance` stops the export."""
    ref, encodings, torch_seconds = timed_logits(reference, rows, problem)
    fp32 = onnx_predictor(staging / ONNX_FP32, reference.loaded, reference.batch_size)
    logits, _, seconds = timed_logits(fp32, rows, problem)
    diff = max_abs_diff(ref, logits)
    if not diff <= tolerance:  # also catches NaN
        raise UserError(f"the fp32 ONNX model's logits differ from PyTorch's by up to {diff:.3g} (tolerance "
                        f"{tolerance:g}) on {len(rows.inputs)} rows of {rows.source}: the export is not faithful, "
                        "nothing was written")  # fmt: skip
    config = reference.loaded.config
    name, torch_value = main_metric(problem, ref, encodings, rows, ref, config)
    _, value = main_metric(problem, logits, encodings, rows, ref, config)
    section = {"file": ONNX_FP32, "max_abs_logit_diff_vs_pytorch": diff, "tolerance": tolerance, "metric": name,
               "pytorch": round(torch_value, 4), "onnx": round(value, 4),
               "seconds": {"pytorch": round(torch_seconds, 3), "onnx": round(seconds, 3)}}  # fmt: skip
    return section, ref, encodings


def check_int8(reference: Predictor, staging: Path, rows, problem: str, fp32: dict, ref, encodings, accept: bool):
    """Quantise, then score int8 on the same rows; a drop of more than MAX_INT8_DROP points refuses the file
    (removed from the export) unless `accept`, which keeps it with a warning in the report and on stderr."""
    quantize_int8(staging / ONNX_FP32, staging / ONNX_INT8)
    int8 = onnx_predictor(staging / ONNX_INT8, reference.loaded, reference.batch_size)
    logits, _, seconds = timed_logits(int8, rows, problem)
    name, value = main_metric(problem, logits, encodings, rows, ref, reference.loaded.config)
    drop = fp32["onnx"] - value
    section = {"file": ONNX_INT8, "metric": name, "fp32": fp32["onnx"], "int8": round(value, 4), "drop_points":
               round(drop, 4), "max_drop_points": MAX_INT8_DROP, "max_abs_logit_diff_vs_fp32": max_abs_diff(ref, logits),
               "seconds": round(seconds, 3), "size_mb": size_mb(staging / ONNX_INT8),
               "refused": False, "warning": None}  # fmt: skip
    return apply_int8_rule(section, [staging / ONNX_INT8], f"{len(rows.inputs)} rows of {rows.source}", accept)


def apply_int8_rule(section: dict, int8_files: list[Path], rows: str, accept: bool) -> dict:
    """Refuse (remove) the int8 file(s) when they lose more than MAX_INT8_DROP points of the section's metric
    against fp32, unless `accept`, which keeps them with a warning in the report and on stderr."""
    drop = section["drop_points"]
    if drop > MAX_INT8_DROP:
        message = (f"int8 loses {drop:.2f} points of {section['metric']} against fp32 ({section['int8']:.2f} vs "
                   f"{section['fp32']:.2f}) on {rows}, more than {MAX_INT8_DROP:g}")  # fmt: skip
        if accept:
            section["warning"] = message + "; kept because --accept-int8-drop was given"
            print(f"WARNING: {section['warning']}", file=sys.stderr)
        else:
            section["refused"] = message
            for path in int8_files:
                path.unlink()
    return section


def export_model(
    model_dir: str, out: str, fmt: str = "onnx", quantize: str | None = None, data: str | None = None,
    columns: dict | None = None, samples: int = 200, tolerance: float = DEFAULT_TOLERANCE,
    accept_int8_drop: bool = False, batch_size: int = 32,
) -> dict:  # fmt: skip
    """Export, check and (optionally) quantise; returns the report written as export_report.json."""
    folder, out = Path(model_dir).expanduser(), Path(out).expanduser()
    kind = check_request(folder, out, fmt, quantize)
    if samples < 2:
        raise UserError(f"--samples must be at least 2, got {samples}")
    tokenizer, processor = load_preprocessors(folder, image=kind == "image")
    model = load_torch_model(folder, kind)
    reference = Predictor(
        Loaded(TorchBackend(model), model.config, tokenizer, processor, folder), batch_size, quiet=True
    )
    problem = model_kind(model.config)
    rows = parity_rows(folder, problem, reference.loaded.modality, data, columns or {}, samples, model.config.id2label)
    if len(rows.inputs) < 2:
        raise UserError(f"{rows.source} gives {len(rows.inputs)} rows; the parity check needs at least 2 (pass --data)")

    def build(staging: Path) -> dict:
        save_preprocessors(reference.loaded, staging)
        started = time.perf_counter()
        example = example_inputs(reference, rows, kind)
        if kind == "image":
            export_graph(model, example, staging / ONNX_FP32, image=True)
        else:
            export_text_graph(model, example, staging / ONNX_FP32, per_token=kind == "token")
        export_seconds = time.perf_counter() - started
        fp32, ref, encodings = check_fp32(reference, staging, rows, problem, tolerance)
        fp32["size_mb"] = size_mb(staging / ONNX_FP32)
        int8 = (
            check_int8(reference, staging, rows, problem, fp32, ref, encodings, accept_int8_drop) if quantize else None
        )
        return {
            "source_model": str(folder.resolve()), "adapters_merged": is_adapter_folder(folder), "format": fmt,
            "head": kind, "problem": problem, "exporter": EXPORTER if kind == "image" else TEXT_EXPORTER, "dynamic_axes": dynamic_axes(kind == "image"),
            "input_names": list(example_inputs(reference, rows, kind)), "parity_rows": {"count": len(rows.inputs),
            "source": rows.source, "gold_labels": rows.gold is not None}, "fp32": fp32, "int8": int8,
            "export_seconds": round(export_seconds, 1), "versions": versions(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }  # fmt: skip

    return write_staged(out, build)


def dynamic_axes(image: bool) -> list[str]:
    return ["batch"] if image else ["batch", "sequence"]


def size_mb(*paths: Path) -> float:
    """The files' total size in MB, one decimal."""
    return round(sum(path.stat().st_size for path in paths) / 2**20, 1)


def timed(run, *args):
    """(run(*args), seconds it took)."""
    started = time.perf_counter()
    return run(*args), time.perf_counter() - started


def write_staged(out: Path, build) -> dict:
    """`build(staging)` fills `<out>.partial` and returns the report, written beside it; the folder is then
    renamed to `out`. Any failure (a parity check included) removes it: nothing is left at `out`."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        report = build(staging)
        write_json(staging / EXPORT_REPORT, report)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()  # empty (checked before anything loaded)
    staging.rename(out)
    return report
