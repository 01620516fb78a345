"""Single-label text classification, one text or a sentence pair per example."""

from __future__ import annotations

from ..data import load_labelled_data
from ..metrics import make_compute_metrics
from ..modeling import load_classifier, load_tokenizer
from . import register_task
from .base import Task


@register_task
class TextClassification(Task):
    name = "text_classification"
    summary = "one label per text (or text pair): topics, sentiment, intent, NLI"
    pipeline_tag = "text-classification"

    def load_data(self):
        return load_labelled_data(self.cfg.data, seed=self.cfg.training.seed)

    def load_processor(self):
        return load_tokenizer(self.cfg.model)

    def load_model(self, label_names):
        from transformers import AutoModelForSequenceClassification

        return load_classifier(AutoModelForSequenceClassification, self.cfg.model, label_names)

    def encode(self, data, tokenizer):
        args = self.cfg.data

        def tokenize(batch):
            pair = batch[args.text_pair_column] if args.text_pair_column else None
            # No padding here: the collator pads each batch to its longest member (dynamic padding).
            encoded = tokenizer(batch[args.text_column], pair, truncation=True, max_length=args.max_seq_length)
            encoded["labels"] = batch[args.label_column]
            return encoded

        return {
            split: dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, desc=f"Tokenizing {split}")
            for split, dataset in data.splits.items()
        }

    def data_collator(self, tokenizer):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def compute_metrics(self):
        return make_compute_metrics(self.cfg.data.extra_metrics)

    def input_columns(self):
        args = self.cfg.data
        return [("text", args.text_column)] + ([("pair", args.text_pair_column)] if args.text_pair_column else [])

    def describe_example(self, example):
        args = self.cfg.data
        out = {"text": example[args.text_column]}
        if args.text_pair_column:
            out["text_pair"] = example[args.text_pair_column]
        return out
