"""`hf-finetune export` of a classical-head folder (frozen features + a scikit-learn head), and the predictor
that reads the export.

The export holds one graph per backbone with its pooling inside (`backbone-<i>/model.onnx`, beside that
backbone's config and tokenizer or image processor) and the scikit-learn pipeline (scaler + classifier)
converted by skl2onnx (`head.onnx`). Prediction from it needs ONNX Runtime and the tokenizer or processor, but
neither the checkpoints nor scikit-learn. Features are computed as for the trained folder (`Backbone.encode`:
length-sorted batches, the recorded pooling and sequence length); only the forward pass differs.

Parity, on the held-out rows the folder's features came from (or `--data`): the exported features against
PyTorch's, and the exported head against scikit-learn on PyTorch's features (same labels, class scores within
`--tolerance`); the accuracy of the whole exported chain is reported beside PyTorch + scikit-learn's. int8
quantises the backbone graphs (where the time goes) and keeps the head in fp32 (a few kB, and a scaler and a
linear model are where int8 arithmetic would cost accuracy); it is judged by the 1-point rule of every export.
The backbones are quantised per channel: a frozen backbone's features go to the head unadapted, and per-tensor
scales cost a logistic regression on mean-pooled MiniLM features 1.8 points of test accuracy (0.762 -> 0.744,
551 fortunes test texts), per-channel scales 0.5 (0.757), at the same speed.

Not exported: the kNN head (distance-weighted). skl2onnx 1.20 negates the neighbour distances before it
weighs them (onnx/sklearn-onnx#1214, open), so the graph weighs all neighbours alike: it agreed with
scikit-learn on 78% of rows in a 4-class check. It is refused in one line rather than exported wrong.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from hf_finetune.analysis.classical import CLASSICAL_JSON, ClassicalPredictor, classical_info
from hf_finetune.analysis.features import read_index
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import softmax
from hf_finetune.inference.backends import ONNX_FP32, ONNX_INT8, OnnxBackend, is_export_folder, load_preprocessors
from hf_finetune.inference.onnx_export import (
    DEFAULT_TOLERANCE,
    EXPORTER,
    MAX_INT8_DROP,
    OPSET,
    TEXT_EXPORTER,
    apply_int8_rule,
    check_export_request,
    example_tensors,
    export_graph,
    export_text_graph,
    quantize_int8,
    size_mb,
    timed,
    versions,
    write_staged,
)
from hf_finetune.inference.parity import opened_rows
from hf_finetune.inference.pipeline import gold_label_ids
from hf_finetune.modeling.backbone import Backbone, PooledEncoder

HEAD_FILE = "head.onnx"
BACKBONE_FOLDER = "backbone-{}"
# Heads without class probabilities: the graph's scores are decision values, turned into a confidence by the
# softmax ClassicalPredictor applies.
DECISION_HEADS = ("linear_svm", "svm_rbf")
HEAD_CONVERTER = f"skl2onnx.to_onnx(target_opset={OPSET})"


class OnnxBackbone(Backbone):
    """A backbone of a classical export: its graph (pooling inside) on ONNX Runtime, its tokenizer or processor."""

    def __init__(self, folder: Path, name: str, width: int, image: bool, int8: bool = False):
        path = folder / (ONNX_INT8 if int8 else ONNX_FP32)
        if not path.is_file():
            raise UserError(f"{folder.parent} has no {folder.name}/{path.name}: export it with --quantize int8, or drop "
                            "--int8")  # fmt: skip
        tokenizer, processor = load_preprocessors(folder, image=image)
        super().__init__(name, None, tokenizer, processor, hidden_size=width)
        self.session = OnnxBackend(path, config=None)

    def pooled(self, inputs: dict, pooling: str):
        import torch

        return torch.from_numpy(self.session({name: value.numpy() for name, value in inputs.items()}))


class OnnxClassicalPredictor(ClassicalPredictor):
    """A classical export ready for raw inputs: the same features and rows as `ClassicalPredictor`, from ONNX."""

    def __init__(self, folder, batch_size: int = 64, int8: bool = False):
        folder = Path(folder)
        self.info = classical_info(folder)
        image = self.info.get("modality") == "image"
        self.backbones = [
            OnnxBackbone(folder / BACKBONE_FOLDER.format(i), b["model"], b["dim"], image, int8)
            for i, b in enumerate(self.info["backbones"])
        ]
        self.session = OnnxBackend(folder / HEAD_FILE, config=None)
        self.batch_size = batch_size

    def head(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.session.outputs({"features": np.asarray(x, dtype=np.float32)})
        scores = np.asarray(outputs["probabilities"], dtype=np.float32)
        return np.asarray(outputs["label"]), softmax(scores) if self.info["head"] in DECISION_HEADS else scores


def load_classical(folder, trust: bool = False, batch_size: int = 64, int8: bool = False) -> ClassicalPredictor:
    """The predictor of a classical-head folder: its export on ONNX Runtime, or scikit-learn + PyTorch."""
    if is_export_folder(folder):
        return OnnxClassicalPredictor(folder, batch_size, int8)
    if int8:
        raise UserError(f"--int8 reads an export folder's int8 graphs; {folder} is not one (see `hf-finetune export`)")
    return ClassicalPredictor(folder, trust=trust, batch_size=batch_size)


# --- Export ---


def check_exportable(info: dict) -> None:
    if info.get("head") == "knn":
        raise UserError("the kNN head cannot be exported faithfully: skl2onnx 1.20 ignores its distance weights "
                        "(onnx/sklearn-onnx#1214); fit an exportable head (logreg, linear_svm, svm_rbf, "
                        "naive_bayes) with `hf-finetune classical` and export that")  # fmt: skip


def convert_head(pipeline, width: int, path: Path) -> None:
    """The scikit-learn pipeline as an ONNX graph: `features` (float32, batch x width) -> `label`, `probabilities`
    (class probabilities, or decision values for the SVMs)."""
    from skl2onnx import to_onnx  # heavy optional dependency (the `export` extra)
    from skl2onnx.common.data_types import FloatTensorType

    classifier = pipeline.named_steps["clf"]
    # Plain tensors out: LinearSVC's converter gives raw scores; the others' ZipMap (a list of dicts) is switched off.
    options = {"raw_scores": True} if type(classifier).__name__ == "LinearSVC" else {"zipmap": False}
    graph = to_onnx(pipeline, initial_types=[("features", FloatTensorType([None, width]))],
                    options={id(classifier): options}, target_opset={"": OPSET, "ai.onnx.ml": 3})  # fmt: skip
    path.write_bytes(graph.SerializeToString())


def export_backbone(backbone: Backbone, pooling: str, rows, max_length: int, target: Path) -> None:
    """One backbone with its pooling as a graph, beside its config and tokenizer or image processor."""
    target.mkdir()
    backbone.model.config.save_pretrained(target)
    (backbone.tokenizer or backbone.image_processor).save_pretrained(target)
    example = example_tensors(backbone.tokenizer, backbone.image_processor, rows.inputs, max_length=max_length)
    encoder = PooledEncoder(backbone.model, pooling)
    if backbone.modality == "text":
        export_text_graph(encoder, example, target / ONNX_FP32, per_token=False, output_name="features")
    else:
        export_graph(encoder, example, target / ONNX_FP32, image=True, output_names=("features",))


def recorded_data(info: dict) -> dict | None:
    """The data settings the folder's features were extracted from (their features.json), while that is there."""
    try:
        return read_index(info["features"]).get("request", {}).get("data") if info.get("features") else None
    except UserError:
        return None


def chain_metric(classes: np.ndarray, gold: list[int] | None, reference: np.ndarray) -> tuple[str, float]:
    """(name, points): accuracy against the gold labels, else agreement with the reference's labels."""
    if gold is not None:
        return "accuracy", round(100 * float(np.mean(classes == np.asarray(gold))), 4)
    return "agreement_with_fp32", round(100 * float(np.mean(classes == reference)), 4)


def check_fp32(reference: ClassicalPredictor, staging: Path, inputs: list, gold, where: str, tolerance: float):
    """Exported features against PyTorch's, the converted head against scikit-learn on the same features, and
    the whole chain's metric; a difference above `tolerance` (or a changed label) stops the export."""
    (ref_x, torch_seconds), exported = timed(reference.features, inputs), OnnxClassicalPredictor(staging)
    x, seconds = timed(exported.features, inputs)
    feature_diff = float(np.abs(x - ref_x).max())
    ref_classes, ref_scores = reference.head(ref_x)
    head_classes, head_scores = exported.head(ref_x)
    # Row maxima: the score `predict` reports (a binary SVM's two decision columns come in either order).
    score_diff = float(np.abs(head_scores.max(axis=1) - ref_scores.max(axis=1)).max())
    changed = int(np.sum(head_classes != ref_classes))
    if not (feature_diff <= tolerance and score_diff <= tolerance) or changed:  # also catches NaN
        raise UserError(f"the fp32 export differs from PyTorch + scikit-learn on {where} (features by up to "
                        f"{feature_diff:.3g}, head scores by up to {score_diff:.3g}, tolerance {tolerance:g}; head "
                        f"labels changed on {changed} rows): the export is not faithful, nothing was written")  # fmt: skip
    classes, _ = exported.head(x)
    name, torch_value = chain_metric(ref_classes, gold, ref_classes)
    _, value = chain_metric(classes, gold, ref_classes)
    files = [f"{BACKBONE_FOLDER.format(i)}/{ONNX_FP32}" for i in range(len(reference.backbones))] + [HEAD_FILE]
    section = {"files": files, "max_abs_feature_diff_vs_pytorch": feature_diff,
               "max_abs_score_diff_vs_sklearn": score_diff, "tolerance": tolerance, "metric": name,
               "pytorch": torch_value, "onnx": value, "size_mb": size_mb(*(staging / f for f in files)),
               "seconds": {"pytorch": round(torch_seconds, 3), "onnx": round(seconds, 3)}}  # fmt: skip
    return section, classes


def check_int8(staging: Path, count: int, inputs: list, gold, where: str, fp32: dict, fp32_classes, accept: bool):
    """Quantise every backbone graph, then the chain's metric on the same rows, by the 1-point rule."""
    backbones = [staging / BACKBONE_FOLDER.format(i) for i in range(count)]
    for folder in backbones:
        quantize_int8(folder / ONNX_FP32, folder / ONNX_INT8, per_channel=True)
    int8 = OnnxClassicalPredictor(staging, int8=True)
    (classes, _), seconds = timed(lambda: int8.head(int8.features(inputs)))
    _, value = chain_metric(classes, gold, fp32_classes)
    files = [f"{b.name}/{ONNX_INT8}" for b in backbones]
    section = {"files": files, "metric": fp32["metric"], "fp32": fp32["onnx"], "int8": value,
               "drop_points": round(fp32["onnx"] - value, 4), "max_drop_points": MAX_INT8_DROP,
               "agreement_with_fp32": round(100 * float(np.mean(classes == fp32_classes)), 4),
               "seconds": round(seconds, 3), "size_mb": size_mb(*(staging / f for f in files)), "refused": False,
               "warning": None}  # fmt: skip
    return apply_int8_rule(section, [staging / f for f in files], where, accept)


def export_classical(
    model_dir: str, out: str, fmt: str = "onnx", quantize: str | None = None, data: str | None = None,
    columns: dict | None = None, samples: int = 200, tolerance: float = DEFAULT_TOLERANCE,
    accept_int8_drop: bool = False, batch_size: int = 32,
) -> dict:  # fmt: skip
    """Export a classical-head folder, check it, optionally quantise its backbones; returns the export report."""
    folder, out = Path(model_dir).expanduser(), Path(out).expanduser()
    check_export_request(folder, out, fmt, quantize, samples)
    info = classical_info(folder)
    check_exportable(info)
    reference = ClassicalPredictor(folder, batch_size=batch_size)
    modality = info.get("modality") or "text"
    inputs, rows = opened_rows(folder, modality, data, columns or {}, samples, recorded_data(info))
    index = {name: i for i, name in enumerate(info["label_names"])}
    gold = gold_label_ids(rows.gold, index) if rows.gold is not None else None
    where, max_length = f"{len(inputs)} rows of {rows.source}", info.get("max_seq_length") or 128

    def build(staging: Path) -> dict:
        started = time.perf_counter()
        for i, backbone in enumerate(reference.backbones):
            export_backbone(backbone, info["pooling"], rows, max_length, staging / BACKBONE_FOLDER.format(i))
        convert_head(reference.pipeline, int(info["feature_dim"]), staging / HEAD_FILE)
        shutil.copyfile(folder / CLASSICAL_JSON, staging / CLASSICAL_JSON)
        export_seconds = time.perf_counter() - started
        fp32, classes = check_fp32(reference, staging, inputs, gold, where, tolerance)
        count = len(reference.backbones)
        int8 = check_int8(staging, count, inputs, gold, where, fp32, classes, accept_int8_drop) if quantize else None
        return {
            "source_model": str(folder.resolve()), "adapters_merged": False, "format": fmt, "head": "classical",
            "classical_head": info["head"], "pooling": info["pooling"], "backbones": [b["model"] for b in info["backbones"]],
            "exporter": {"backbones": TEXT_EXPORTER if modality == "text" else EXPORTER, "head": HEAD_CONVERTER},
            "dynamic_axes": ["batch", "sequence"] if modality == "text" else ["batch"],
            "parity_rows": {"count": len(inputs), "source": rows.source, "gold_labels": gold is not None},
            "fp32": fp32, "int8": int8, "export_seconds": round(export_seconds, 1),
            "versions": {**versions(), "skl2onnx": skl2onnx_version()}, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }  # fmt: skip

    return write_staged(out, build)


def skl2onnx_version() -> str:
    import skl2onnx

    return skl2onnx.__version__
