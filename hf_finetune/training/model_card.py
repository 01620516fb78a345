"""The model card (`README.md`) written beside every model.

Built with `huggingface_hub`'s `ModelCard`/`ModelCardData` so the metadata block is
what the Hub expects (`base_model`, `datasets`, `pipeline_tag`, `model-index`). It
says what someone needs to trust and reuse the model: where it started, what data,
which strategy, how much of it was trained, how well it does, and how to load it.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_finetune.assets.models import packaged_model_hub_id
from hf_finetune.settings.arguments import looks_like_local_path
from hf_finetune.settings.packaged import is_packaged
from hf_finetune.strategies.plan import format_summary
from hf_finetune.training.card_sections import (
    card_language,
    card_license,
    metric_ids,
    trainer_sections,
)
from hf_finetune.training.record import metric_id

ADAPTER_USAGE = """This folder holds PEFT adapters and the trained head (`adapter_model.safetensors`), not a
full model. `hf-finetune evaluate/predict --model {name}` use it as it is; for plain transformers,
merge the adapters into the base weights first:

```bash
hf-finetune merge --model {name} --out {name}-merged
```

"""
# An adapter repo on the Hub: peft on top of the base checkpoint, whose config is replaced by ours (labels).
HUB_ADAPTER_PEFT_USAGE = """This repository holds PEFT adapters and the trained head (`adapter_model.safetensors`), not a
full model; `config.json` holds the labels. Load the base checkpoint with this config, then the adapters:

```python
from peft import PeftModel
from transformers import AutoConfig, {auto_class}, pipeline

config = AutoConfig.from_pretrained("{repo_id}")
base = {auto_class}.from_pretrained("{base_model}", config=config, ignore_mismatched_sizes=True)
model = PeftModel.from_pretrained(base, "{repo_id}").merge_and_unload()
classifier = pipeline("{pipeline_tag}", model=model, {processor_argument}="{repo_id}"{pipeline_arguments})
classifier({example_input})
```

"""
HUB_ADAPTER_HF_FINETUNE_USAGE = """With hf-finetune (which also finds the base checkpoint `{base}`), merge into a plain model:

```bash
hf download {repo_id} --local-dir {name}
hf-finetune merge --model {name} --out {name}-merged
```

```python
from transformers import pipeline

classifier = pipeline("{pipeline_tag}", model="{name}-merged"{pipeline_arguments})
classifier({example_input})
```
"""


def _hub_id_or_none(name: str | None) -> str | None:
    """Only Hub ids belong in card metadata; local paths and packaged names do not."""
    if not name or Path(name).expanduser().exists() or looks_like_local_path(name):
        return None
    return packaged_model_hub_id(name) if is_packaged(name) else name


def usage_section(cfg, task, summary: dict, base_model: str | None, repo_id: str | None, model_name: str) -> str:
    """How to load the model: from the output folder, or from its Hub repo (`repo_id`)."""
    adapter = summary.get("adapter")
    custom = task.usage_example(repo_id or model_name)
    if custom is not None:  # a folder `pipeline` cannot load (several heads)
        return custom
    if repo_id and adapter:
        fields = dict(
            repo_id=repo_id,
            name=model_name,
            base=cfg.model.model_name_or_path,
            base_model=base_model,
            auto_class=task.auto_model_class,
            pipeline_tag=task.pipeline_tag,
            processor_argument=task.processor_argument,
            example_input=task.example_input,
            pipeline_arguments=task.pipeline_arguments,
        )
        # The plain-peft route needs the base checkpoint on the Hub; a local base only hf-finetune can name.
        peft_route = HUB_ADAPTER_PEFT_USAGE.format(**fields) if base_model else ""
        return peft_route + HUB_ADAPTER_HF_FINETUNE_USAGE.format(**fields)
    source = repo_id or (f"{model_name}-merged" if adapter else model_name)
    return f"""{ADAPTER_USAGE.format(name=model_name) if adapter else ""}```python
from transformers import pipeline

classifier = pipeline("{task.pipeline_tag}", model="{source}"{task.pipeline_arguments})
classifier({task.example_input})
```
"""


def build_model_card(cfg, task, summary: dict, repo_id: str | None = None) -> ModelCard:
    """`summary`: label_names, data_sizes, parameters (trainable, total), blocks, adapter, metrics per split,
    train_runtime, baseline, hardware, and the task's `notes` (`training.run` writes it to metrics.json).

    `repo_id` (`user/name`): the card is for that Hub repo, and its usage example loads from there
    (`hf_finetune.training.hub` regenerates the card this way before a push); otherwise from the output folder.
    """
    base_model = _hub_id_or_none(cfg.model.model_name_or_path)
    model_name = repo_id.split("/")[-1] if repo_id else Path(cfg.training.output_dir).name
    data = card_data(cfg, task, summary, base_model, model_name)
    body = card_body(cfg, task, summary, base_model, model_name, repo_id)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def card_data(cfg, task, summary: dict, base_model: str | None, model_name: str) -> ModelCardData:
    """The card's YAML header: base model, data set, library, pipeline tag, tags, evaluation results."""
    # Local files take precedence over dataset_name (data.files.load_raw_splits), so they describe the data.
    from_hub = not cfg.data.train_file and not is_packaged(cfg.data.dataset_name)
    dataset_id = _hub_id_or_none(cfg.data.dataset_name) if from_hub else None
    eval_results = [
        EvalResult(
            task_type=task.pipeline_tag,
            dataset_type=dataset_id or "local",
            dataset_name=cfg.data.train_file or cfg.data.dataset_name,
            dataset_config=cfg.data.dataset_config_name,
            dataset_split=split,
            metric_type=metric_id(key)[0],  # an `evaluate` id (`f1`), its arguments below
            metric_args=metric_id(key)[1],
            metric_name=f"{split} {key.replace('_', ' ')}",
            metric_value=round(values[key], 4),
        )
        for split, values in summary["metrics"].items()
        for key in task.metric_keys
        if key in values
    ]
    return ModelCardData(
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        library_name="peft" if summary.get("adapter") else "transformers",
        pipeline_tag=task.pipeline_tag,
        # `strategy-full`, not `strategy:full`: `key:value` tags imitate the Hub's reserved prefixes.
        tags=["hf-finetune", task.name, *(f"strategy-{s}" for s in cfg.strategy.strategy_names)],
        license=card_license(cfg),
        language=card_language(cfg),
        metrics=metric_ids(task.metric_keys),
        model_name=model_name,
        eval_results=eval_results or None,
    )


def results_table(task, summary: dict) -> str:
    """Markdown table of the task's metrics per split, and the baseline line under it."""
    keys = task.metric_keys
    rows = "\n".join(
        f"| {split} | " + " | ".join(f"{values.get(k, float('nan')):.4f}" for k in keys) + " |"
        for split, values in summary["metrics"].items()
    )
    header = "| split | " + " | ".join(k.replace("_", " ") for k in keys) + " |\n|---|" + "---|" * len(keys)
    baseline = summary.get("baseline") or {  # runs from before the task baselines: the majority class
        "name": "majority class", "scores": {"accuracy": summary.get("majority_baseline", float("nan"))}}  # fmt: skip
    scores = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in baseline["scores"].items())
    split = f", {baseline['split']} split" if baseline.get("split") else ""
    return f"{header}\n{rows}\n\nBaseline ({baseline['name']}{split}): {scores}."


def card_body(cfg, task, summary: dict, base_model: str | None, model_name: str, repo_id: str | None) -> str:
    """The card's Markdown: what it was trained from and how, results against the baseline, how to use it."""
    dataset_label = cfg.data.train_file or cfg.data.dataset_name
    strategies = cfg.strategy.strategy_names
    trainable, total = summary["parameters"]
    notes = "".join(f"\n- {note}" for note in summary.get("notes", []))
    sizes = ", ".join(f"{split} {n}" for split, n in summary["data_sizes"].items())
    inputs = ", ".join(f"{kind}=`{column}`" for kind, column in task.input_columns())
    precision = summary.get("precision", "not recorded")
    if summary.get("precision_reason"):
        precision += f" ({summary['precision_requested']}: {summary['precision_reason']})"
    return f"""
# {model_name}

Fine-tuned from `{cfg.model.model_name_or_path}`{f" (`{base_model}`)" if base_model and base_model != cfg.model.model_name_or_path else ""} for **{task.name}** with hf_finetune.

## Training

- Data: `{dataset_label}`{f" (config `{cfg.data.dataset_config_name}`)" if cfg.data.dataset_config_name else ""}, columns {inputs}, label=`{task.target_column}`{" (multi-label)" if cfg.data.multi_label else ""}
- Examples: {sizes}
- {task.describe_labels(summary["label_names"])}
- Strategy: {" + ".join(strategies)}
- Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.1f}%)
- Learning rate {cfg.training.learning_rate}, {cfg.training.num_train_epochs:g} epochs, batch {cfg.training.per_device_train_batch_size} per device, seed {cfg.training.seed}
- Hardware: {summary.get("hardware", "not recorded")}
- Precision: {precision}
- Training time: {summary["train_runtime"]:.0f} s{notes}

Parameters per block (embeddings, transformer blocks bottom to top, head) and their learning rates:

{format_summary(summary["blocks"])}

## Results

{results_table(task, summary)}
{task.report_files_note()}
{trainer_sections(summary)}
## How to use

{usage_section(cfg, task, summary, base_model, repo_id, model_name)}
Reproduce the run: `hf-finetune train --config run_config.yaml`.
"""
