"""The plain-Trainer side of the benchmark: what a user would write without hf_finetune.

Text and vision baselines differ only in their data and a few Trainer arguments; the recipe's
sizes, schedule and seed, the absence of evaluation and checkpoints, and the scoring on the test
split are the same for both, so they live here once.
"""

from __future__ import annotations

from bench.clock import TrainClock


def train_plain(cfg, model, train, test, data_collator=None, **arguments):
    """Train `model` with a plain `Trainer` on the recipe's settings; (trainer, train metrics, test accuracy, clock).

    `arguments` are the configuration's own `TrainingArguments` (padding strategy, token counting...)."""
    import torch
    from transformers import Trainer, TrainingArguments

    training = cfg.training
    args = TrainingArguments(
        output_dir=training.output_dir,
        per_device_train_batch_size=training.per_device_train_batch_size,
        per_device_eval_batch_size=training.per_device_eval_batch_size,
        learning_rate=training.learning_rate,
        weight_decay=training.weight_decay,
        num_train_epochs=training.num_train_epochs,
        seed=training.seed,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        **arguments,
    )
    clock = TrainClock()
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=data_collator, callbacks=[clock])
    metrics = trainer.train().metrics
    predictions = trainer.predict(test)
    accuracy = float((predictions.predictions.argmax(-1) == predictions.label_ids).mean())
    return trainer, metrics, accuracy, clock
