"""One forward pass, from PyTorch or from ONNX Runtime, behind the same call: `backend(inputs) -> logits`.

`predict`, `evaluate` and the export's parity check all go through this seam, so an exported folder and the
model it came from are read, batched and post-processed by the same code; only the forward pass differs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_finetune.errors import UserError
from hf_finetune.modeling.adapters import is_adapter_folder, load_adapter_model
from hf_finetune.modeling.loading import check_checkpoint_folder
from hf_finetune.settings.precision import PrecisionChoice, autocast, check_precision, resolve_auto

EXPORT_REPORT = "export_report.json"
ONNX_FP32, ONNX_INT8 = "model.onnx", "model_int8.onnx"
SUPPORTED_HEADS = ("ForSequenceClassification", "ForTokenClassification", "ForImageClassification")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def is_export_folder(folder) -> bool:
    """A folder `hf-finetune export` wrote (its report is written last, so a finished one)."""
    return (Path(folder) / EXPORT_REPORT).is_file()


def thread_count() -> int:
    """The threads one forward pass may use: OMP_NUM_THREADS when set (shared machines), else the cores we may run on."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class TorchBackend:
    """A transformers model in eval mode under `torch.inference_mode` (no autograd bookkeeping at all), in fp32
    or under bf16/fp16 autocast (`precision`): the same arithmetic training chose on this machine. Attention stays
    SDPA, whose forward is the faster one under CPU bf16 (`hf_finetune.modeling.attention`)."""

    def __init__(self, model, precision: str = "fp32"):
        self.model, self.precision = model.eval(), precision
        self.config = model.config
        self.device = next(self.model.parameters()).device
        self.engine = "pytorch" if precision == "fp32" else f"pytorch {precision}"

    def __call__(self, inputs: dict) -> np.ndarray:
        import torch

        with torch.inference_mode(), autocast(self.precision, self.device.type):
            tensors = {k: torch.as_tensor(np.asarray(v)).to(self.device) for k, v in inputs.items()}
            return self.model(**tensors).logits.float().cpu().numpy()


def inference_precision(requested: str, folder: Path) -> PrecisionChoice:
    """`requested` for predicting with `folder`'s model on this machine. `auto` follows the machine, as training
    does, except where the run that trained the model pinned fp32 (a recipe whose accuracy bf16 costs)."""
    check_precision(requested, "--precision")
    if requested == "auto" and trained_precision_request(folder) == "fp32":
        return PrecisionChoice("fp32", "auto", "the run that trained this model asked for fp32")
    return resolve_auto(requested)


def check_export_precision(folder: Path, precision: str) -> None:
    """An export runs in its graph's own precision: a torch precision other than fp32 is a one-line refusal."""
    if is_export_folder(folder) and precision not in ("auto", "fp32"):
        raise UserError(f"{folder} is an ONNX export (fp32, or int8 with --int8); --precision {precision} is for "
                        "PyTorch model folders")  # fmt: skip


def trained_precision_request(folder: Path) -> str | None:
    """What the training run asked for (metrics.json `precision_requested`); None for folders from elsewhere."""
    metrics = folder / "metrics.json"
    try:
        return json.loads(metrics.read_text(encoding="utf-8")).get("precision_requested")
    except (OSError, ValueError, AttributeError):
        return None


class OnnxBackend:
    """An ONNX Runtime session on the CPU; inputs the graph does not take (e.g. token_type_ids) are dropped."""

    engine = "onnxruntime"

    def __init__(self, path: Path, config, threads: int | None = None):
        import onnxruntime as ort  # heavy optional dependency (the `export` extra): imported only when used

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or thread_count()
        options.inter_op_num_threads = 1  # one graph at a time: extra inter-op threads only contend for cores
        options.log_severity_level = 3  # errors only: shape-merge warnings of converted graphs are not the user's
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.config, self.path = config, Path(path)

    def outputs(self, inputs: dict) -> dict[str, np.ndarray]:
        """Every output of the graph by name (a multi-task export has one per task)."""
        feed = {name: np.asarray(inputs[name]) for name in self.input_names}
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            if name in feed:
                feed[name] = feed[name].astype(np.int64)
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def __call__(self, inputs: dict) -> np.ndarray:
        return self.outputs(inputs)[self.output_names[0]]


@dataclass
class Loaded:
    """A model ready for inference: the forward pass and what turns inputs into its tensors."""

    backend: object
    config: object
    tokenizer: object = None
    image_processor: object = None
    folder: Path | None = None

    @property
    def modality(self) -> str:
        return "text" if self.tokenizer is not None else "image"


def check_model_folder(folder: Path) -> dict:
    """The folder's config.json as a dict, or a one-line error saying what the folder is not."""
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has no config.json: it is not a model folder (pass a run's output_dir)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not config.get("id2label"):
        raise UserError(f"{folder}/config.json has no id2label: not a classification model")
    return config


def head_kind(config: dict, folder: Path) -> str:
    """`sequence`, `token` or `image`: the head an export or a prediction needs, or a one-line refusal."""
    architectures = [str(a) for a in config.get("architectures") or []]
    for suffix, kind in zip(SUPPORTED_HEADS, ("sequence", "token", "image"), strict=True):
        if any(a.endswith(suffix) for a in architectures):
            return kind
    raise UserError(
        f"{folder} holds a {', '.join(architectures) or 'model of unknown architecture'}; supported: text sequence "
        "classification, token classification and image classification models"
    )


def load_preprocessors(folder: Path, image: bool):
    """(tokenizer, image processor) saved in the folder: one of them is None."""
    from transformers import AutoImageProcessor, AutoTokenizer

    if image:
        return None, AutoImageProcessor.from_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder)), None


def load_torch_model(folder: Path, kind: str):
    """The folder's model as a plain transformers model: PEFT adapters (lora, ia3) are merged in memory."""
    import transformers

    if is_adapter_folder(folder):
        return load_adapter_model(folder)
    check_checkpoint_folder(str(folder), allow_pickle=False)
    auto = {
        "sequence": transformers.AutoModelForSequenceClassification,
        "token": transformers.AutoModelForTokenClassification,
        "image": transformers.AutoModelForImageClassification,
    }[kind]
    return auto.from_pretrained(str(folder))


def load_for_inference(model_dir: str, int8: bool = False, precision: str = "auto") -> Loaded:
    """A trained model folder (PyTorch, in `precision`: see `inference_precision`) or an export folder (ONNX
    Runtime; `int8`: its quantised file; `precision` other than auto is refused, the graph fixes it)."""
    from transformers import AutoConfig

    folder = Path(model_dir).expanduser()
    config_dict = check_model_folder(folder)
    kind = head_kind(config_dict, folder)
    check_export_precision(folder, precision)
    tokenizer, processor = load_preprocessors(folder, image=kind == "image")
    if is_export_folder(folder):
        path = folder / (ONNX_INT8 if int8 else ONNX_FP32)
        if not path.is_file():
            raise UserError(f"{folder} has no {path.name}: export it with --quantize int8, or drop --int8")
        backend = OnnxBackend(path, AutoConfig.from_pretrained(str(folder)))
    else:
        if int8:
            raise UserError(f"--int8 reads an export folder's {ONNX_INT8}; {folder} is a PyTorch model folder")
        choice = inference_precision(precision, folder)
        backend = TorchBackend(load_torch_model(folder, kind), choice.precision)
    return Loaded(backend, backend.config, tokenizer, processor, folder)
