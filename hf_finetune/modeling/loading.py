"""Load a checkpoint, give it a head sized to the labels, and say what was newly initialised.

A local folder and a Hub id go through the same `from_pretrained` call; the checks
in front of it turn the usual failure modes (a typo in a path, a folder without
weights, pickle-only weights, a head of the wrong size) into one-line errors.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hf_finetune.assets.models import resolve_packaged_model
from hf_finetune.errors import UserError, first_line
from hf_finetune.modeling.load_report import quiet_transformers_loading, report_loading
from hf_finetune.settings.arguments import ModelArguments, looks_like_local_path
from hf_finetune.settings.packaged import is_packaged

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
# Where a checkpoint names its own Python classes (`auto_map`), run only with trust_remote_code.
REMOTE_CODE_CONFIGS = ("config.json", "tokenizer_config.json", "preprocessor_config.json")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def resolve_checkpoint(name: str) -> str:
    """Turn `packaged:NAME` into a folder and check local folders; Hub ids pass through."""
    if is_packaged(name):
        return resolve_packaged_model(name)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"checkpoint {name} is a file; pass the folder that holds config.json and the weights")
        return str(path)
    if looks_like_local_path(name):
        raise UserError(f"checkpoint folder {name} does not exist; pass an existing folder or a Hub model id")
    return name  # a Hub id such as `bert-base-uncased` or `org/name`


def recorded_checkpoint_name(name: str) -> str:
    """How a run records its base checkpoint: packaged names and Hub ids as given, local folders absolute."""
    if is_packaged(name) or not Path(name).expanduser().exists():
        return name
    return str(Path(name).expanduser().resolve())


def check_checkpoint_folder(folder: str, allow_pickle: bool) -> None:
    path = Path(folder)
    if not path.is_dir():
        return  # a Hub id: transformers does the checking
    if not (path / "config.json").exists():
        raise UserError(f"{folder} has no config.json: it is not a transformers checkpoint folder")
    if any((path / f).exists() for f in SAFE_WEIGHTS):
        return
    if any((path / f).exists() for f in PICKLE_WEIGHTS):
        if not allow_pickle:
            raise UserError(
                f"{folder} holds only pickle weights (pytorch_model.bin), which can run code when loaded; "
                "convert them to safetensors or pass --allow_pickle if you trust the source"
            )
        return
    if any(path.glob("adapter_model.safetensors")):
        return  # a PEFT adapter folder; the strategy layer loads it
    raise UserError(f"{folder} has no model weights (model.safetensors); was the run finished?")


def check_remote_code(name: str, args: ModelArguments) -> None:
    """Code shipped with a checkpoint runs only when asked for, and from the Hub only at a pinned commit.

    transformers would quietly use its built-in class for a local folder whose `auto_map` names
    custom code (when `model_type` is known), training another model than the author meant;
    and a Hub branch can change between the review of its code and the run that executes it.
    """
    folder = Path(name)
    if folder.is_dir():
        shipped = [f for f in REMOTE_CODE_CONFIGS if "auto_map" in _read_json(folder / f)]
        if shipped and not args.trust_remote_code:
            raise UserError(
                f"{name} ships its own model code (auto_map in {shipped[0]}), which runs only with "
                "--trust_remote_code; pass it if you have read and trust that code"
            )
        return
    if args.trust_remote_code and not COMMIT_SHA.fullmatch(args.revision or ""):
        got = f"; '{args.revision}' is a branch or tag, which can move" if args.revision else ""
        raise UserError(
            f"--trust_remote_code runs code from the Hub repo {name}, so pin the version you reviewed: pass "
            f"--revision <commit sha> (40 hex digits){got}"
        )


def _read_json(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing or unreadable: transformers reports it when loading
        return {}
    return data if isinstance(data, dict) else {}


def check_model_inputs(args: ModelArguments) -> None:
    """The cheap checks (paths, weights, tokenizer files, shipped code), run before any data is loaded."""
    checkpoint = resolve_checkpoint(args.model_name_or_path)
    check_checkpoint_folder(checkpoint, args.allow_pickle)
    check_remote_code(checkpoint, args)
    tokenizer = resolve_checkpoint(args.tokenizer_name or args.model_name_or_path)
    check_tokenizer_folder(tokenizer)
    if tokenizer != checkpoint:
        check_remote_code(tokenizer, args)


def has_any(folder: Path, names: tuple[str, ...]) -> bool:
    return any((folder / name).is_file() for name in names)


def checkpoint_modality(folder: str | Path) -> str:
    """`image` for a local checkpoint folder with an image processor and no tokenizer, else `text`.

    The one place that decides it: `advise`, `predict` and the frozen-feature backbone all ask here.
    A Hub id (no local folder) cannot be inspected without a download and counts as text."""
    folder = Path(folder)
    image = folder.is_dir() and has_any(folder, PROCESSOR_FILES) and not has_any(folder, TOKENIZER_FILES)
    return "image" if image else "text"


def check_tokenizer_folder(name: str) -> None:
    folder = Path(name)
    if folder.is_dir() and not any((folder / f).exists() for f in TOKENIZER_FILES):
        raise UserError(f"no tokenizer files in {name}; pass --tokenizer_name with a tokenizer id or folder")


def load_tokenizer(args: ModelArguments, **options):
    """`options`: tokenizer settings such as `add_prefix_space` (`hf_finetune.modeling.pretokenized`)."""
    from transformers import AutoTokenizer

    name = resolve_checkpoint(args.tokenizer_name or args.model_name_or_path)
    check_tokenizer_folder(name)
    try:
        return AutoTokenizer.from_pretrained(
            name, revision=args.revision, trust_remote_code=args.trust_remote_code, **options
        )
    except Exception as exc:
        raise UserError(f"cannot load the tokenizer of '{name}': {first_line(exc)}") from None


def load_classifier(auto_class, args: ModelArguments, label_names: list[str], **config_kwargs):
    """`auto_class.from_pretrained` with the head sized to `label_names`; logs newly initialised weights."""
    checkpoint = resolve_checkpoint(args.model_name_or_path)
    check_checkpoint_folder(checkpoint, args.allow_pickle)
    previous_labels = _checkpoint_label_names(checkpoint, args)
    id2label = dict(enumerate(label_names))
    try:
        with quiet_transformers_loading():  # its LOAD REPORT lists the expected new head too: `report_loading`
            model, info = auto_class.from_pretrained(
                checkpoint,
                num_labels=len(label_names),
                id2label=id2label,
                label2id={v: k for k, v in id2label.items()},
                revision=args.revision,
                trust_remote_code=args.trust_remote_code,
                ignore_mismatched_sizes=args.ignore_mismatched_sizes,
                use_safetensors=None if args.allow_pickle else True,
                output_loading_info=True,
                **config_kwargs,
            )
    except RuntimeError as exc:
        if "ignore_mismatched_sizes" in str(exc):
            raise UserError(
                f"{checkpoint} already has a classification head of a different size than the {len(label_names)} "
                "labels; pass --ignore_mismatched_sizes to replace it with a new head"
            ) from None
        raise
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load checkpoint '{checkpoint}': {first_line(exc)}") from None
    report_loading(model, info)
    new = sorted(info.get("missing_keys", [])) + sorted(k for k, *_ in info.get("mismatched_keys", []))
    if previous_labels and previous_labels != label_names:
        # Same number of classes, other classes (a ViT pretrained on 5 source classes, fine-tuned on 5
        # target classes): the sizes match, so from_pretrained would keep a head that scores the wrong
        # classes. A new task gets a new head, whatever its size.
        reset = reset_head(model)
        logger.info(
            "the checkpoint's head predicts other labels (%s); it is replaced by a new head for %s",
            ", ".join(previous_labels[:5]) + (" ..." if len(previous_labels) > 5 else ""),
            ", ".join(label_names[:5]) + (" ..." if len(label_names) > 5 else ""),
        )
        new = sorted(set(new) | set(reset))
    if new:
        logger.info("newly initialised (trained from scratch): %s", ", ".join(new))
    return model, new


def _checkpoint_label_names(checkpoint: str, args: ModelArguments) -> list[str] | None:
    """The label names a checkpoint's head was trained for; None for a headless or generic checkpoint."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            checkpoint, revision=args.revision, trust_remote_code=args.trust_remote_code
        )
    except Exception:  # an unreadable config fails, with a clear message, in from_pretrained itself
        return None
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label[i] for i in sorted(id2label)]
    # `LABEL_0, LABEL_1` is transformers' placeholder: the checkpoint says nothing about its classes.
    if not names or all(re.fullmatch(r"LABEL_\d+", str(n)) for n in names):
        return None
    return [str(n) for n in names]


def reset_head(model) -> list[str]:
    """Re-initialise everything outside the base model (the task head); returns the parameter names."""
    names = []
    for child_name, child in model.named_children():
        if child is model.base_model:
            continue
        for module in child.modules():  # transformers 5.x skips weights it marked as loaded
            module._is_hf_initialized = False
            for tensor in (*module.parameters(recurse=False), *module.buffers(recurse=False)):
                tensor._is_hf_initialized = False
        child.apply(model._init_weights)
        names += [f"{child_name}.{n}" for n, _ in child.named_parameters()]
    return names
