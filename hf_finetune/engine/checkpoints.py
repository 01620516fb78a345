"""Checkpoints a killed run can trust, and which one a restarted run resumes from.

Trainer writes `checkpoint-N/` file by file in place (its atomic rename was reverted,
transformers#36112), so a run killed while saving leaves a folder that looks like a
checkpoint and is not. Ours is complete only once `checkpoint_complete.json` exists: it is
written last, after every file of the checkpoint has been fsynced, and it lists their
sizes. `resume: auto` takes the newest complete checkpoint and removes incomplete ones;
rotation (`save_total_limit`) runs only after the new checkpoint is complete, so an older
complete one survives a crash at any moment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from hf_finetune.errors import UserError
from hf_finetune.outputs import RUN_CONFIG

logger = logging.getLogger("hf_finetune")

CHECKPOINT_COMPLETE = "checkpoint_complete.json"
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
RESUME_CHOICES = ("auto", "false")


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot fsync a directory; the files themselves were synced
        pass
    finally:
        os.close(descriptor)


def mark_checkpoint_complete(folder: Path, step: int) -> None:
    """fsync every file, then write the sentinel (itself written to a temporary name, synced, renamed)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKPOINT_COMPLETE)
    for path in files:
        _fsync(path)
    record = {"step": step, "files": {str(p.relative_to(folder)): p.stat().st_size for p in files}}
    partial = folder / f".{CHECKPOINT_COMPLETE}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, folder / CHECKPOINT_COMPLETE)
    _fsync(folder)


def is_complete(folder: Path, left_out: tuple[str, ...] = ()) -> bool:
    """The sentinel exists and every file it lists is there with its recorded size (but for `left_out`
    names: a checkpoint pushed to the Hub leaves `training_args.bin` behind)."""
    try:
        record = json.loads((folder / CHECKPOINT_COMPLETE).read_text(encoding="utf-8"))
        listed = {name: size for name, size in record["files"].items() if Path(name).name not in left_out}
        return all((folder / name).stat().st_size == size for name, size in listed.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def checkpoints(output_dir: Path) -> list[Path]:
    """`checkpoint-N` folders, oldest step first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_NAME.match(p.name).group(1)))


def newest_complete(output_dir: Path) -> Path | None:
    complete = [p for p in checkpoints(output_dir) if is_complete(p)]
    return complete[-1] if complete else None


def remove_incomplete(output_dir: Path) -> list[Path]:
    """Delete checkpoint folders a killed save left behind (main process only)."""
    removed = [p for p in checkpoints(output_dir) if not is_complete(p)]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("removed incomplete checkpoint %s (the run was stopped while saving it)", folder)
    return removed


def resolve_resume(resume: str, output_dir: Path) -> Path | None:
    """`auto`: the newest complete checkpoint in the output folder, or None; `false`: None; else a path."""
    if resume == "false":
        return None
    if resume == "auto":
        return newest_complete(output_dir)
    path = Path(resume).expanduser()
    if not path.is_dir():
        raise UserError(
            f"resume: checkpoint folder {resume} does not exist; use `auto`, `false` or a checkpoint-N path"
        )
    if not is_complete(path) and not (path / "trainer_state.json").is_file():
        raise UserError(
            f"resume: {resume} is not a complete checkpoint (no {CHECKPOINT_COMPLETE}; the run was probably "
            "killed while saving it); pick an older checkpoint-N or use --resume auto"
        )
    return path


def load_renamed_weights(folder: Path, model) -> bool:
    """Load a checkpoint whose weight names differ from the model's; False when they match (or no full model).

    Trainer loads checkpoints (to resume, and the best one at the end) with a non-strict
    `load_state_dict`, but transformers 5.x `save_pretrained` writes some architectures under
    their legacy names (ViT: `vit.encoder.layer.N.attention.attention.query` for
    `vit.layers.N.attention.q_proj`): nothing matches and the model silently keeps its current
    weights. `from_pretrained` maps the names, so such a checkpoint is loaded through it, strictly.
    Modules a strategy hangs on the model while it trains (dann's domain classifier) are unknown to
    the architecture: they are saved under their own names and read back from the file as they are.
    """
    from safetensors import safe_open
    from transformers import PreTrainedModel

    weights = folder / "model.safetensors"
    if not (weights.is_file() and isinstance(model, PreTrainedModel)):
        return False
    with safe_open(str(weights), framework="pt") as handle:
        saved = set(handle.keys())
        if saved <= set(model.state_dict()):
            return False
        loaded = type(model).from_pretrained(folder, dtype=model.dtype).state_dict()
        attached = [name for name in model.state_dict() if name not in loaded]
        absent = [name for name in attached if name not in saved]
        if absent:
            raise UserError(f"cannot load {folder}: it holds no weights for {absent[0]} (and {len(absent) - 1} more)")
        loaded.update({name: handle.get_tensor(name) for name in attached})
    model.load_state_dict(loaded, strict=True)
    return True


def load_adapter_in_place(folder: Path, model) -> bool:
    """Resume a PEFT run by copying the checkpoint's adapter (and head) weights into the model's own
    parameters; False when `folder` holds no adapter.

    Trainer resumes PEFT models with `load_adapter`, which builds new parameter objects; our
    optimizer groups (`TransferPlan`) were made from the old ones, so after a resume the adapters
    silently stopped training (measured: the loss history split at the first resumed step).
    """
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = folder / "adapter_model.safetensors"
    if not (weights.is_file() and isinstance(model, PeftModel)):
        return False
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    if result.unexpected_keys:
        raise UserError(
            f"cannot resume from {folder}: its adapter weights do not fit this model ({result.unexpected_keys[0]}, ...)"
        )
    return True


def check_resumable(checkpoint: Path, model, label_names: list[str]) -> None:
    """A checkpoint of another architecture or label set would load partly or not at all: refuse it."""
    try:
        saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # an adapter-only checkpoint keeps its config elsewhere; peft checks its own keys
    config = model.config
    if saved.get("model_type") != getattr(config, "model_type", None):
        raise UserError(
            f"cannot resume from {checkpoint}: it is a {saved.get('model_type')} model and this run trains a "
            f"{config.model_type}; point --resume at a checkpoint of this run or pass --resume false"
        )
    saved_labels = [saved.get("id2label", {}).get(str(i)) for i in range(len(saved.get("id2label", {})))]
    if saved_labels and saved_labels != list(label_names):
        raise UserError(
            f"cannot resume from {checkpoint}: its labels ({', '.join(map(str, saved_labels))}) differ from this "
            f"run's ({', '.join(label_names)}); point --resume at a checkpoint of this run or pass --resume false"
        )


# Settings that may change between a run and its resumption without changing what is trained.
RESUME_MAY_CHANGE = {
    "resume",
    "resume_from_checkpoint",
    "overwrite_output_dir",
    "output_dir",
    "report_to",
    "logging_steps",
    "disable_tqdm",
    "dataloader_num_workers",
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
    "hub_revision",
    "hub_strategy",
    "hub_always_push",
}


def changed_settings(cfg, saved_config: Path) -> list[str]:
    """`key: old -> new` for every setting that differs from the run being resumed."""
    import yaml

    try:
        saved = yaml.safe_load(saved_config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []  # nothing to compare with: the checkpoint's own state still has to load
    current = cfg.to_recipe()
    keys = (set(saved) | set(current)) - RESUME_MAY_CHANGE
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in sorted(keys) if saved.get(k) != current.get(k)]


def plan_resume(cfg, output_dir: Path) -> Path | None:
    """The checkpoint this run continues from, or None; refuses the ambiguous cases before any work."""
    resume = cfg.run.resume
    if cfg.run.overwrite_output_dir and resume in RESUME_CHOICES:
        return None  # starting over: the folder is cleared
    checkpoint = resolve_resume(resume, output_dir)
    if resume == "false" and newest_complete(output_dir):
        raise UserError(
            f"{output_dir} holds checkpoints of an unfinished run; continue it with --resume auto, or pass "
            "--overwrite_output_dir to start over"
        )
    if resume == "auto" and checkpoint is not None:
        changed = changed_settings(cfg, output_dir / RUN_CONFIG)
        if changed:
            raise UserError(
                f"{output_dir} holds an unfinished run with other settings ({'; '.join(changed[:4])}); resume it "
                "with the same settings, pass --resume false --overwrite_output_dir to start over, or "
                "--resume <checkpoint-N> to resume with the new ones on purpose"
            )
    return checkpoint
