"""`TrainingArguments` fields that hf_finetune does not honour: refused in one line, never silently ignored.

`hf-finetune train --help` lists every `TrainingArguments` field because the Trainer honours nearly all
of them. The few that a fine-tuning run here cannot honour are below, each with the value that works
and the way to get what the user wanted. `hub_strategy` and `hub_always_push` (checkpoint pushing) are
not here: the scale-out work owns them.
"""

from __future__ import annotations

from hf_finetune.errors import UserError

# field -> (the value hf_finetune runs with, why and what to do instead)
IGNORED_TRAINING_FLAGS: dict[str, tuple[object, str]] = {
    "do_train": (True, "`hf-finetune train` always trains; score a trained model with `hf-finetune evaluate`"),
    "do_eval": (
        True,
        "the validation split is always scored at the end; `--eval_strategy no` skips the per-epoch evaluations",
    ),
    "do_predict": (True, "the test split, when the data has one, is always scored; drop the test file to skip it"),
    "prediction_loss_only": (
        False,
        "metrics, the confusion matrix and the mistakes file need predictions, not only the loss",
    ),
}


def refuse_ignored_training_flags(args) -> None:
    """Stop before any work when a field we do not honour is set to something other than what we do."""
    for name, (value, reason) in IGNORED_TRAINING_FLAGS.items():
        if getattr(args, name, value) != value:
            raise UserError(f"--{name} {getattr(args, name)} is not supported: {reason}. Remove the option")
