"""Text classification: one label or several (`multi_label`) per text or sentence pair."""

from __future__ import annotations

from hf_finetune.data.labels import multi_hot
from hf_finetune.data.splits import encode_splits, load_labelled_data
from hf_finetune.modeling.loading import load_classifier, load_tokenizer
from hf_finetune.tasks import register_task
from hf_finetune.tasks.base import ClassificationTask


class TextInputs:
    """Text in, through the checkpoint's tokenizer: one text column, or a pair encoded as
    `[CLS] text [SEP] text_pair [SEP]` (token type 0, then 1), in the order the columns are named."""

    def load_processor(self):
        return load_tokenizer(self.cfg.model)

    def tokenize(self, tokenizer, batch: dict) -> dict:
        args = self.cfg.data
        pair = batch[args.text_pair_column] if args.text_pair_column else None
        # No padding here: the collator pads each batch to its longest member (dynamic padding).
        return tokenizer(batch[args.text_column], pair, truncation=True, max_length=args.max_seq_length)

    def labels(self, targets: list, data) -> list:
        return targets

    def encode(self, data, tokenizer):
        def tokenize(batch, target_column, split):
            encoded = self.tokenize(tokenizer, batch)
            encoded["labels"] = self.labels(batch[target_column], data)
            return encoded

        return encode_splits(
            data.splits, tokenize, self.cfg.data.label_column, num_proc=self.cfg.data.preprocessing_num_workers
        )

    def data_collator(self, tokenizer):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def input_columns(self):
        args = self.cfg.data
        return [("text", args.text_column)] + ([("pair", args.text_pair_column)] if args.text_pair_column else [])

    def describe_example(self, example):
        args = self.cfg.data
        out = {"text": example[args.text_column]}
        if args.text_pair_column:
            out["text_pair"] = example[args.text_pair_column]
        return out


@register_task
class TextClassification(TextInputs, ClassificationTask):
    name = "text_classification"
    summary = "one label (or several: multi_label) per text or text pair: topics, sentiment, intent, NLI, emotions"
    pipeline_tag = "text-classification"

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.data.text_pair_column:
            self.example_input = '{"text": "first text", "text_pair": "second text"}'
        if cfg.data.multi_label:  # every label's probability; the card says which threshold to apply
            self.example_input += ", top_k=None"

    def load_data(self):
        return load_labelled_data(self.cfg.data, seed=self.cfg.training.seed)

    def load_model(self, label_names):
        from transformers import AutoModelForSequenceClassification

        return load_classifier(
            AutoModelForSequenceClassification, self.cfg.model, label_names, **self.model_config_kwargs()
        )

    def labels(self, targets, data):
        return multi_hot(targets, len(data.label_names)) if self.cfg.data.multi_label else targets
