"""A multi-task model folder: the encoder, `heads.safetensors` and `multitask.json`."""

from __future__ import annotations

import json
from pathlib import Path

from hf_finetune.errors import UserError
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.tasks.multi_task.model import MultiTaskModel

MULTITASK_FILE = "multitask.json"


HEADS_FILE = "heads.safetensors"


def save_multitask(model: MultiTaskModel, folder: Path, state_dict: dict | None = None) -> None:
    """Encoder via `save_pretrained` (safetensors), heads in `heads.safetensors`, tasks in `multitask.json`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = state_dict if state_dict is not None else model.state_dict()
    encoder_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    model.encoder.save_pretrained(folder, state_dict=encoder_state)
    heads = {k[len("heads.") :]: v.detach().contiguous().cpu() for k, v in state.items() if k.startswith("heads.")}
    save_file(heads, str(folder / HEADS_FILE), metadata={"format": "pt"})
    description = {
        "tasks": [
            {"name": task, "labels": model.label_names[task], "weight": model.weights[task]}
            for task in model.task_names
        ],
        "pooling": "first token (CNN: mean over positions), dropout, then one linear head per task",
        "encoder": type(model.encoder).__name__,
    }
    (folder / MULTITASK_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")


def is_multitask_folder(folder) -> bool:
    return (Path(folder).expanduser() / MULTITASK_FILE).is_file()


def read_tasks(folder: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """(task -> label names, task -> loss weight) from `multitask.json`."""
    try:
        description = json.loads((folder / MULTITASK_FILE).read_text(encoding="utf-8"))
        entries = description["tasks"]
        return {e["name"]: list(e["labels"]) for e in entries}, {e["name"]: float(e["weight"]) for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder / MULTITASK_FILE} is not a readable multi-task description ({exc})") from None


def load_multitask_weights(folder: Path, model: MultiTaskModel) -> None:
    """Copy a saved folder's encoder and head weights into `model`, strictly (resume, best checkpoint).

    The encoder goes through `from_pretrained`, which maps the legacy weight names some architectures
    are saved under (ViT) to the live ones; a plain `load_state_dict` would silently match nothing."""
    from safetensors.torch import load_file

    if not (folder / HEADS_FILE).is_file():
        raise UserError(f"{folder} holds no {HEADS_FILE}: not a multi-task checkpoint")
    encoder = load_backbone(str(folder)).model
    model.encoder.load_state_dict(encoder.state_dict(), strict=True)
    model.heads.load_state_dict(load_file(str(folder / HEADS_FILE)), strict=True)
