"""PEFT adapters: wrap a model for training, load an adapter folder back, merge it.

An adapter run's output folder holds `adapter_model.safetensors` (adapters + the trained
head, which is always in `modules_to_save`: heads lost on save are a long-running peft
complaint), `adapter_config.json`, and our `config.json` with the label names. The base
checkpoint is recorded as the user named it (`packaged:...`, a Hub id or an absolute
path), so `hf_finetune.modeling.resolve_checkpoint` finds it again on load.
"""

from __future__ import annotations

from pathlib import Path

from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import discover_blocks, head_module_names
from hf_finetune.modeling.loading import check_checkpoint_folder, recorded_checkpoint_name, resolve_checkpoint

ADAPTER_CONFIG = "adapter_config.json"

PEFT_REFUSES = {
    "l2sp": "adapters keep the pretrained weights frozen, so there is no drift for l2sp to pull back; "
    "use lora_dropout or weight_decay",
}


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def wrap_with_peft(model, peft_config, cfg):
    """`get_peft_model` with the head in `modules_to_save` and the base recorded as the user named it."""
    from peft import get_peft_model

    peft_config.modules_to_save = head_module_names(model, discover_blocks(model))
    wrapped = get_peft_model(model, peft_config)
    # Set after wrapping: peft fills it with the resolved folder, which differs per machine for `packaged:`.
    wrapped.peft_config["default"].base_model_name_or_path = recorded_checkpoint_name(cfg.model.model_name_or_path)
    return wrapped


def save_adapter_config(model, folder: Path) -> None:
    """The wrapped model's config, naming its task class (the base checkpoint's config names the bare encoder)."""
    inner = model.get_base_model()
    inner.config.architectures = [type(inner).__name__]
    inner.config.save_pretrained(folder)


def load_adapter_model(folder: str | Path, allow_pickle: bool = False):
    """Base checkpoint + adapters + trained head from an adapter folder, merged into a plain model."""
    import transformers
    from peft import PeftConfig, PeftModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has adapters but no config.json with the label names; was the run finished?")
    config = transformers.AutoConfig.from_pretrained(folder)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture or "", None)
    if model_class is None:
        raise UserError(f"{folder}/config.json names no known architecture ({architecture})")
    base = resolve_checkpoint(PeftConfig.from_pretrained(folder).base_model_name_or_path)
    check_checkpoint_folder(base, allow_pickle)
    # The head is built from our config (label names), then replaced by the trained one saved with the
    # adapters; silence transformers' report that it was "newly initialised", which is expected here.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model = model_class.from_pretrained(base, config=config, ignore_mismatched_sizes=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    return PeftModel.from_pretrained(model, folder).merge_and_unload()


def merge_adapter_folder(folder: str | Path, out: str | Path) -> Path:
    """Write a plain model (safetensors, config with labels, tokenizer/image processor) that `pipeline()` loads."""
    import shutil

    folder, out = Path(folder).expanduser(), Path(out).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist")
    if not is_adapter_folder(folder):
        raise UserError(f"{folder} holds no PEFT adapters ({ADAPTER_CONFIG}); it is already a plain model")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty; choose a new folder for the merged model")
    model = load_adapter_model(folder)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    for path in folder.iterdir():  # the tokenizer or image processor files, byte for byte
        if path.is_file() and (
            path.name.startswith(("tokenizer", "vocab", "special_tokens", "preprocessor", "merges"))
            or path.suffix == ".model"
        ):
            shutil.copy2(path, staging / path.name)
    if out.exists():
        out.rmdir()
    staging.rename(out)  # all or nothing: a merge that fails half-way leaves no half-written model
    return out
