"""The model card (`README.md`) written beside every model.

Built with `huggingface_hub`'s `ModelCard`/`ModelCardData` so the metadata block is
what the Hub expects (`base_model`, `datasets`, `pipeline_tag`, `model-index`). It
says what someone needs to trust and reuse the model: where it started, what data,
which strategy, how much of it was trained, how well it does, and how to load it.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .config import looks_like_local_path
from .local_assets import is_packaged, packaged_model_hub_id
from .transfer import format_summary

ADAPTER_USAGE = """This folder holds PEFT adapters and the trained head (`adapter_model.safetensors`), not a
full model. `hf-finetune evaluate/predict --model {name}` use it as it is; for plain transformers,
merge the adapters into the base weights first:

```bash
hf-finetune merge --model {name} --out {name}-merged
```

"""
METRIC_KEYS = ("accuracy", "macro_f1", "macro_precision", "macro_recall")


def _hub_id_or_none(name: str | None) -> str | None:
    """Only Hub ids belong in card metadata; local paths and packaged names do not."""
    if not name or Path(name).expanduser().exists() or looks_like_local_path(name):
        return None
    return packaged_model_hub_id(name) if is_packaged(name) else name


def build_model_card(cfg, task, summary: dict) -> ModelCard:
    """`summary`: label_names, data_sizes, parameters (trainable, total), metrics per split, train_runtime."""
    base_model = _hub_id_or_none(cfg.model.model_name_or_path)
    # Local files take precedence over dataset_name (data.load_raw_splits), so they describe the data.
    from_hub = not cfg.data.train_file and not is_packaged(cfg.data.dataset_name)
    dataset_id = _hub_id_or_none(cfg.data.dataset_name) if from_hub else None
    dataset_label = cfg.data.train_file or cfg.data.dataset_name
    strategies = cfg.strategy.strategy_names
    model_name = Path(cfg.training.output_dir).name
    eval_results = [
        EvalResult(
            task_type=task.pipeline_tag,
            dataset_type=dataset_id or "local",
            dataset_name=dataset_label,
            dataset_config=cfg.data.dataset_config_name,
            dataset_split=split,
            metric_type=key,
            metric_value=round(values[key], 4),
        )
        for split, values in summary["metrics"].items()
        for key in METRIC_KEYS
        if key in values
    ]
    data = ModelCardData(
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        library_name="transformers",
        pipeline_tag=task.pipeline_tag,
        tags=["hf-finetune", task.name, *(f"strategy:{s}" for s in strategies)],
        model_name=model_name,
        eval_results=eval_results or None,
    )
    trainable, total = summary["parameters"]
    metric_rows = "\n".join(
        f"| {split} | " + " | ".join(f"{values.get(k, float('nan')):.4f}" for k in METRIC_KEYS) + " |"
        for split, values in summary["metrics"].items()
    )
    sizes = ", ".join(f"{split} {n}" for split, n in summary["data_sizes"].items())
    inputs = ", ".join(f"{kind}=`{column}`" for kind, column in task.input_columns())
    body = f"""
# {model_name}

Fine-tuned from `{cfg.model.model_name_or_path}`{f" (`{base_model}`)" if base_model and base_model != cfg.model.model_name_or_path else ""} for **{task.name}** with hf_finetune.

## Training

- Data: `{dataset_label}`{f" (config `{cfg.data.dataset_config_name}`)" if cfg.data.dataset_config_name else ""}, columns {inputs}, label=`{cfg.data.label_column}`{" (multi-label)" if cfg.data.multi_label else ""}
- Examples: {sizes}
- Labels ({len(summary["label_names"])}): {", ".join(summary["label_names"])}
- Strategy: {" + ".join(strategies)}
- Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.1f}%)
- Learning rate {cfg.training.learning_rate}, {cfg.training.num_train_epochs:g} epochs, batch {cfg.training.per_device_train_batch_size} per device, seed {cfg.training.seed}
- Training time: {summary["train_runtime"]:.0f} s

Parameters per block (embeddings, transformer blocks bottom to top, head) and their learning rates:

{format_summary(summary["blocks"])}

## Results

| split | accuracy | macro F1 | macro precision | macro recall |
|---|---|---|---|---|
{metric_rows}

Majority-class baseline accuracy: {summary["majority_baseline"]:.4f}. Per-class scores and the confusion
matrix are in `metrics.json` and `confusion_matrix.png`.

## How to use

{ADAPTER_USAGE.format(name=model_name) if summary.get("adapter") else ""}```python
from transformers import pipeline

classifier = pipeline("{task.pipeline_tag}", model="{model_name}{"-merged" if summary.get("adapter") else ""}")
classifier({task.example_input})
```

Reproduce the run: `hf-finetune train --config run_config.yaml`.
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
