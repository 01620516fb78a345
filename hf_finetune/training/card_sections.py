"""The parts of a model card that `Trainer.create_model_card` writes and ours kept out: licence, language,
the `evaluate` metric ids, the hyper-parameters, the per-epoch results table, the framework versions.

Licence and language are claimed only when known: given by the user (`--license`, `--language`), or
known for a packaged checkpoint (all-MiniLM-L6-v2 is Apache-2.0) or data set (the fortunes are English).
A guessed licence on a public card is worse than none.
"""

from __future__ import annotations

from transformers.modelcard import make_markdown_table

from hf_finetune.training.record import metric_id

# What we know about the packaged assets (`hf_finetune.assets`): the checkpoint's licence, the data's language.
PACKAGED_LICENSES = {"packaged:all-MiniLM-L6-v2": "apache-2.0"}
PACKAGED_LANGUAGE_PREFIXES = {"packaged:fortunes": "en"}


def card_license(cfg) -> str | None:
    return cfg.model.license or PACKAGED_LICENSES.get(cfg.model.model_name_or_path or "")


def card_language(cfg) -> str | list[str] | None:
    if cfg.model.language:
        languages = [part.strip() for part in cfg.model.language.split(",") if part.strip()]
        return languages[0] if len(languages) == 1 else languages
    name = cfg.data.dataset_name or ""
    return next((lang for prefix, lang in PACKAGED_LANGUAGE_PREFIXES.items() if name.startswith(prefix)), None)


def metric_ids(keys) -> list[str]:
    """The card's `metrics` list: each headline metric's `evaluate` id, once."""
    return list(dict.fromkeys(metric_id(key)[0] for key in keys))


def trainer_sections(summary: dict) -> str:
    """Hyper-parameters, per-epoch results and framework versions, as transformers' own cards show them."""
    parts = []
    if summary.get("hyperparameters"):
        lines = "\n".join(f"- {name}: {value}" for name, value in summary["hyperparameters"].items())
        parts.append(f"### Training hyperparameters\n\n{lines}\n")
    if summary.get("epoch_results"):
        parts.append(f"### Training results\n\n{make_markdown_table(summary['epoch_results'])}")
    if summary.get("framework_versions"):
        lines = "\n".join(f"- {name} {version}" for name, version in summary["framework_versions"].items())
        parts.append(f"### Framework versions\n\n{lines}\n")
    return "\n" + "\n".join(parts) if parts else ""
