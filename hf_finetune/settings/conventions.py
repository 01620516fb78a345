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
