"""The command table: name -> where it lives and what it does. `ls hf_finetune/cli` lists the families.

A command is `module:function` taking the remaining argv and returning an exit code. The module is
imported only when its command runs, so a command pays only for the libraries it uses (scikit-learn,
matplotlib, optuna, onnxruntime...), not for those of every other command.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    target: str  # "module:function" inside hf_finetune.cli
    summary: str
    aliases: tuple[str, ...] = ()

    def run(self, argv: list[str]) -> int:
        module, function = self.target.split(":")
        return getattr(importlib.import_module(f"hf_finetune.cli.{module}"), function)(argv)


COMMANDS = {
    c.name: c
    for c in (
        Command("train", "train:train_main", "fine-tune a checkpoint: hf-finetune train --config RECIPE [--key value ...]"),
        Command("pretrain", "train:pretrain_main", "pretrain the offline ViT on the Fashion-MNIST source classes (reused once finished)"),
        Command("evaluate", "predict:evaluate_main", "score a trained or exported model on labelled texts or images"),
        Command("predict", "predict:predict_main", "label texts or images with a trained or exported model (CSV or JSONL out)"),
        Command("export", "predict:export_main", "export a model to ONNX (fp32, int8) with a parity report: hf-finetune export --model DIR --out DIR2"),
        Command("features", "features:features_main", "cache the pooled features of a frozen backbone (or two): hf-finetune features --model M --data D --out F"),
        Command("classical", "features:classical_main", "fit a scikit-learn head on cached features: hf-finetune classical --features F --head logreg --out DIR"),
        Command("compare", "compare:compare_main", "transfer methods side by side on one recipe's splits: hf-finetune compare --config R --strategies ..."),
        Command("merge", "publish:merge_main", "merge PEFT adapters into their base model: hf-finetune merge --model DIR --out DIR2"),
        Command("push", "publish:push_main", "push a finished run to the Hugging Face Hub: hf-finetune push --model DIR --repo-id user/name"),
        Command("tune", "tune:tune_main", "hyper-parameter search on Optuna, resumable, many workers: hf-finetune tune --config R --n_trials N"),
        Command("advise", "advise:advise_main", "measure a checkpoint on your data and recommend a strategy: hf-finetune advise --model M --data D"),
        Command("rank", "rank:rank_main", "rank candidate checkpoints on your data and write the best one's recipe: hf-finetune rank --models A,B --config R"),
        Command("recipes", "listing:recipes_main", "list the shipped recipes"),
        Command("strategies", "listing:strategies_main", "list the transfer strategies"),
        Command("tasks", "listing:tasks_main", "list the tasks"),
        Command("launch-config", "launching:launch_config_main", "list the shipped accelerate launch configs, or print one's path", ("launch_config",)),
        Command("zero-shot", "zero_shot:zero_shot_main", "classify unseen classes by their attributes: hf-finetune zero-shot --model RUN --classes T --data D", ("zero_shot",)),
    )
}  # fmt: skip


def find(name: str) -> Command | None:
    return COMMANDS.get(name) or next((c for c in COMMANDS.values() if name in c.aliases), None)


def summary(name: str) -> str:
    return COMMANDS[name].summary
