"""Text configurations: four plain-Trainer set-ups and our pipeline (full fine-tuning and LoRA).

All six train the packaged all-MiniLM-L6-v2 on the same 4-topic fortunes samples (our own data
loader, so the same validation hold-out and the same training subset), with the demo recipe's
learning rate, batch, epochs, sequence length and seed, and are scored on the same test split.
The plain set-ups evaluate nothing and save nothing while training, as `run_glue.py` does by default.
One of them passes `--bf16`, what a plain user could turn on: autocast over transformers' default SDPA
attention, against ours, which resolves `precision: auto` (bf16 with eager attention on a CPU with native bf16).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.clock import TrainClock
from bench.measure import model_shape
from bench.plain import train_plain

RECIPE = "fortunes_topics"
LORA_RECIPE = "fortunes_topics_lora"


def recipe_config(recipe: str, sizes: dict):
    """The recipe as our pipeline resolves it, cut to the benchmark's sizes."""
    from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path

    values = load_recipe(resolve_recipe_path(recipe))
    values.update(bench_overrides(sizes), output_dir=tempfile.mkdtemp(prefix="bench-"))
    return config_from_dict(values, recipe=recipe)


def bench_overrides(sizes: dict) -> dict:
    overrides = {"max_train_samples": sizes["train"], "num_train_epochs": sizes["epochs"], "disable_tqdm": True}
    if sizes.get("eval"):
        overrides["max_eval_samples"] = sizes["eval"]
    if sizes.get("seed") is not None:  # `--seed`: the training subset, the batches and the weights' start move with it
        overrides["seed"] = sizes["seed"]
    # Trainer counts every position of every training batch (`state.num_input_tokens_seen`).
    overrides["include_num_input_tokens_seen"] = "all"
    return overrides


def load_bench_data(cfg):
    """Our splits (validation held out of train, then the training subset) and the checkpoint's tokenizer."""
    from hf_finetune.data.splits import load_labelled_data
    from hf_finetune.modeling.loading import load_tokenizer

    return load_labelled_data(cfg.data, seed=cfg.training.seed), load_tokenizer(cfg.model)


def real_tokens_per_epoch(tokenizer, texts: list[str], max_length: int) -> int:
    """Non-pad tokens one pass over `texts` feeds the model (truncated as in training)."""
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def plain_trainer(name: str, sizes: dict) -> dict:
    """`run_glue`: pad to max_length, random batches; `dynamic`: pad per batch; `dynamic_grouped`: + length
    grouping; `dynamic_grouped_bf16`: + `--bf16` (TrainingArguments(bf16=True), on the CPU too)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        default_data_collator,
    )

    from hf_finetune.modeling.loading import resolve_checkpoint

    cfg = recipe_config(RECIPE, sizes)
    data, tokenizer = load_bench_data(cfg)
    max_length = cfg.data.max_seq_length
    padding = "max_length" if name == "run_glue" else False

    def encode(batch):
        encoded = tokenizer(batch["text"], padding=padding, truncation=True, max_length=max_length)
        return {**encoded, "labels": batch["label"]}

    train, test = (
        data.splits[s].map(encode, batched=True, remove_columns=["text", "label"]) for s in ("train", "test")
    )
    torch.manual_seed(cfg.training.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_checkpoint(cfg.model.model_name_or_path), num_labels=len(data.label_names)
    )
    collator = default_data_collator if name == "run_glue" else DataCollatorWithPadding(tokenizer)
    precision = "bf16" if name == "dynamic_grouped_bf16" else "fp32"
    trainer, metrics, accuracy, clock = train_plain(
        cfg,
        model,
        train,
        test,
        collator,
        logging_steps=10,
        include_num_input_tokens_seen="all",
        train_sampling_strategy="group_by_length" if name.startswith("dynamic_grouped") else "random",
        bf16=precision == "bf16",
    )
    return {
        "train_runtime": metrics["train_runtime"],
        "train_samples": len(train) * cfg.training.num_train_epochs,
        "real_tokens": real_tokens_per_epoch(tokenizer, list(data.splits["train"]["text"]), max_length)
        * cfg.training.num_train_epochs,
        "padded_tokens": trainer.state.num_input_tokens_seen,
        "test_accuracy": accuracy,
        "precision": precision,
        **model_shape(model),
        **clock.row(),
    }


def ours(name: str, sizes: dict) -> dict:
    """Our pipeline end to end (`training.run`: per-epoch evaluation, checkpoints, best-model reload)."""
    from hf_finetune.training.run import run

    recipe = LORA_RECIPE if name == "ours_lora" else RECIPE
    cfg = recipe_config(recipe, sizes)
    data, tokenizer = load_bench_data(cfg)
    clock = TrainClock()
    result = run(cfg, callbacks=[clock])
    out = Path(cfg.training.output_dir)
    summary = json.loads((out / "metrics.json").read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    epochs = cfg.training.num_train_epochs
    row = {
        "train_runtime": summary["train"]["train_runtime"],
        "train_samples": len(data.splits["train"]) * epochs,
        "real_tokens": real_tokens_per_epoch(tokenizer, list(data.splits["train"]["text"]), cfg.data.max_seq_length)
        * epochs,
        "padded_tokens": state["num_input_tokens_seen"],
        "test_accuracy": result.metrics["test"]["accuracy"],
        "precision": summary["precision"],  # what the run resolved `precision: auto` to
        **model_shape(result.model),
        **clock.row(),
    }
    if name == "ours_lora":
        from hf_finetune.modeling.loading import resolve_checkpoint

        full = Path(resolve_checkpoint(cfg.model.model_name_or_path)) / "model.safetensors"
        row["checkpoint_mb"] = _mb(out / "adapter_model.safetensors")
        row["checkpoint_share_of_full"] = row["checkpoint_mb"] / _mb(full)
    else:
        row["checkpoint_mb"] = _mb(out / "model.safetensors")
    return row


def _mb(path: Path) -> float:
    return path.stat().st_size / 2**20


CONFIGS = {
    "run_glue": ("(1) plain Trainer, run_glue.py style: pad to 128, random batches", plain_trainer, False),
    "dynamic": ("(2) plain Trainer, dynamic padding (DataCollatorWithPadding)", plain_trainer, False),
    "dynamic_grouped": ("(2b) plain Trainer, dynamic padding + group_by_length", plain_trainer, False),
    "dynamic_grouped_bf16": ("(2c) plain Trainer, dynamic padding + group_by_length, --bf16", plain_trainer, False),
    "ours": ("(3) hf_finetune default (fortunes_topics recipe)", ours, True),
    "ours_lora": ("(4) hf_finetune LoRA (fortunes_topics_lora recipe)", ours, True),
}
