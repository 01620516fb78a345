"""What a run leaves for the tools of the ecosystem: the example scripts' results files and the facts a
model card made by `Trainer.create_model_card` holds (hyper-parameters, per-epoch results, framework versions).

Tools that read transformers example-script output look for `all_results.json`, `train_results.json`
and `eval_results.json` (keys prefixed `train_`, `eval_`, as `Trainer.save_metrics` writes them); our
own `metrics.json` stays the richer record. The card facts are taken with transformers' own helpers
(`transformers.modelcard`), stored in metrics.json, so a card rebuilt before a push says the same.
"""

from __future__ import annotations

import importlib.metadata

from transformers.modelcard import extract_hyperparameters_from_trainer, parse_log_history

from hf_finetune.version import VERSION

# Metric keys our tasks report -> (`evaluate` metric id, its arguments): what the card's `metrics` list
# and `model-index` metric types hold, so the Hub and `evaluate` know what was measured.
METRIC_IDS = {
    "accuracy": ("accuracy", None),
    "macro_f1": ("f1", {"average": "macro"}),
    "micro_f1": ("f1", {"average": "micro"}),
    "macro_precision": ("precision", {"average": "macro"}),
    "macro_recall": ("recall", {"average": "macro"}),
    "f1": ("seqeval", None),  # token classification: entity-level scores by the conlleval rules
    "precision": ("seqeval", None),
    "recall": ("seqeval", None),
    "pearson": ("pearsonr", None),
    "spearman": ("spearmanr", None),
    "mse": ("mse", None),
    "mae": ("mae", None),
}
FRAMEWORKS = ("transformers", "torch", "datasets", "tokenizers", "accelerate", "peft")


def metric_id(key: str) -> tuple[str, dict | None]:
    """`macro_f1` -> (`f1`, {average: macro}); a multi-task head's `topic_accuracy` -> (`accuracy`, None)."""
    if key in METRIC_IDS:
        return METRIC_IDS[key]
    suffix = next((k for k in sorted(METRIC_IDS, key=len, reverse=True) if key.endswith(f"_{k}")), None)
    return METRIC_IDS[suffix] if suffix else (key, None)


def framework_versions() -> dict[str, str]:
    versions = {"hf_finetune": VERSION}
    for name in FRAMEWORKS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def training_record(trainer) -> dict:
    """Hyper-parameters, the per-epoch validation table and framework versions, for metrics.json and the card."""
    hyperparameters = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                       for k, v in extract_hyperparameters_from_trainer(trainer).items()}  # fmt: skip
    _, epoch_lines, _ = parse_log_history(trainer.state.log_history)
    return {
        "hyperparameters": hyperparameters,
        "epoch_results": epoch_lines or [],
        "framework_versions": framework_versions(),
    }


def save_results_files(trainer, train_metrics: dict, predictions: dict, sizes: dict) -> None:
    """`train_results.json`, `eval_results.json` (the validation split), `test_results.json` when there is a
    test split, and `all_results.json` holding them all: what the transformers example scripts write."""
    trainer.save_metrics("train", {**train_metrics, "train_samples": sizes.get("train", 0)})
    for split, prefix in (("validation", "eval"), ("test", "test")):
        if split in predictions:
            values = {f"{prefix}_{k[len(split) + 1 :]}": v for k, v in predictions[split].metrics.items()}
            trainer.save_metrics(prefix, {**values, f"{prefix}_samples": sizes.get(split, 0)})
