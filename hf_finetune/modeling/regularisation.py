"""Stochastic depth and dropout overrides: config keys a checkpoint's architecture actually has.

`from_pretrained(..., **overrides)` sets config attributes, and silently sets an attribute the architecture
never reads: a `drop_path_rate` on a ViT (transformers' ViT has no stochastic depth) would do nothing.
So each override is checked against the checkpoint's config first and refused where nothing reads it.
"""

from __future__ import annotations

from transformers import AutoConfig

from hf_finetune.errors import UserError, first_line

# Our option -> the config keys that carry it, across architectures (BERT/ViT, DistilBERT, Swin/ConvNeXt...).
CONFIG_KEYS = {
    "drop_path_rate": ("drop_path_rate",),
    "hidden_dropout": ("hidden_dropout_prob", "hidden_dropout", "dropout"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout"),
}


def config_overrides(args, checkpoint: str) -> dict:
    """{config key: value} for the overrides the user set; UserError for one the architecture lacks."""
    wanted = {name: getattr(args, name) for name in CONFIG_KEYS if getattr(args, name) is not None}
    if not wanted:
        return {}
    try:
        config = AutoConfig.from_pretrained(
            checkpoint, revision=args.revision, trust_remote_code=args.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the config of '{checkpoint}': {first_line(exc)}") from None
    overrides = {}
    for name, value in wanted.items():
        if getattr(config, "model_type", "") == "timm_wrapper" and name == "drop_path_rate":
            # timm models take it as a `create_model` argument, which TimmWrapperConfig keeps in model_args.
            overrides["model_args"] = {**(getattr(config, "model_args", None) or {}), "drop_path_rate": value}
            continue
        keys = [key for key in CONFIG_KEYS[name] if hasattr(config, key)]
        if not keys:
            raise UserError(
                f"{name} cannot be set for this checkpoint: its {type(config).__name__} has none of "
                f"{', '.join(CONFIG_KEYS[name])}; remove {name}"
            )
        overrides.update(dict.fromkeys(keys, value))
    return overrides
