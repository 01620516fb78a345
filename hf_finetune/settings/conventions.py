"""The transformers example scripts' spellings, accepted beside ours, and `cache_dir` applied.

Someone coming from `run_glue.py` or `run_ner.py` types `--text_column_name`, `--model_revision`,
`--label_all_tokens`: each is an alias of one of our fields (on the command line through the field's
`aliases` metadata, which `HfArgumentParser` passes to argparse; in a recipe or a dict through
`canonical_keys`), so both spellings set the same value and `run_config.yaml` writes ours.
"""

from __future__ import annotations

from pathlib import Path

from hf_finetune.errors import UserError

# example-script name -> our field
ALIASES = {
    "text_column_name": "text_column",
    "label_column_name": "label_column",
    "image_column_name": "image_column",
    "model_revision": "revision",
    "label_all_tokens": "label_all_subtokens",
}


def canonical_keys(values: dict) -> dict:
    """Recipe keys with the example scripts' names (and hyphens) turned into ours; both at once is an error."""
    out: dict = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        name = ALIASES.get(name, name)
        if name in out:
            raise UserError(f"`{key}` and `{name}` set the same option; keep one")
        out[name] = value
    return out


def apply_cache_dir(cache_dir: str | None) -> None:
    """Point the Hub and datasets caches at `cache_dir` for this process, as `cache_dir=` would per call.

    Both libraries read these module constants at call time (`huggingface_hub.constants.HF_HUB_CACHE`,
    `datasets.config.HF_DATASETS_CACHE`), so every download and every Arrow cache of this run lands there.
    """
    if not cache_dir:
        return
    import datasets.config  # late: datasets is heavy and settings must stay cheap to import
    from huggingface_hub import constants

    root = Path(cache_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cache_dir {cache_dir} cannot be created: {exc.strerror}") from None
    constants.HF_HUB_CACHE = str(root / "hub")
    datasets.config.HF_DATASETS_CACHE = root / "datasets"


def split_report_to(value):
    """`--report_to tensorboard,trackio` (one string on the command line) -> a list, as a recipe's list is."""
    if isinstance(value, str) and "," in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_report_to(report_to) -> None:
    """Each tracker is one transformers knows and is installed: one line now, not a traceback after loading."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    available = set(get_available_reporting_integrations())
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise UserError(f"report_to: unknown tracker '{name}'; known: {', '.join(INTEGRATION_TO_CALLBACK)}")
        if name not in available:
            raise UserError(
                f"report_to {name}: its package is not installed; pip install 'hf_finetune[tracking]' "
                f"(tensorboard, trackio) or the package for {name}"
            )
