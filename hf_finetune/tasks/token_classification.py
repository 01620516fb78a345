"""Token classification: one tag per word (BIO/IOB2), e.g. named entities (CoNLL-2003).

Data: a `tokens` column (words) and a `ner_tags` column (one tag per word): lists from JSONL,
Parquet or the Hub (`Sequence(ClassLabel)` ids keep their names), whitespace-separated strings
from CSV, or CoNLL text files (one word per line, tag last). Tags are checked before the model
loads: a broken BIO sequence is an error naming the row and the word.

Words are split into sub-tokens by the checkpoint's (fast) tokenizer; the word's tag goes on its
first sub-token and -100 on the others (ignored by the loss), or on all of them with
`label_all_subtokens` (B- becomes I- after the first). Scores are seqeval's entity-level
precision, recall and F1 over one tag per word, so both choices are scored alike.
"""

from __future__ import annotations

import logging

from hf_finetune.data.splits import encode_splits, load_token_data
from hf_finetune.data.tags import align_labels, continuation_ids, parse_tag
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import entity_report, entity_scores, make_token_compute_metrics, tag_sequences
from hf_finetune.evaluation.mistakes import write_entity_mistakes
from hf_finetune.modeling.loading import load_classifier
from hf_finetune.modeling.pretokenized import load_word_tokenizer
from hf_finetune.outputs import MISCLASSIFIED
from hf_finetune.tasks import register_task
from hf_finetune.tasks.base import Task

logger = logging.getLogger("hf_finetune")
TRUNCATED = "__truncated__"


@register_task
class TokenClassification(Task):
    name = "token_classification"
    summary = "one tag per word (BIO/IOB2): named entities (CoNLL-2003), other word-level tags"
    pipeline_tag = "token-classification"
    supports_label_smoothing = True  # Trainer's LabelSmoother skips the -100 positions
    example_input = '"Mark Twain left Hannibal for New York on a Monday in June 1853."'
    # `first`: a word's tag is its first sub-token's, as trained (`simple` also works; it groups sub-tokens
    # by their own tags, which only `label_all_subtokens` trains).
    pipeline_arguments = ', aggregation_strategy="first"'
    auto_model_class = "AutoModelForTokenClassification"
    best_metric = "f1"

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.data.multi_label:
            raise UserError("multi_label is for classification; token classification gives one tag per word")
        self.truncated = 0

    @property
    def metric_keys(self):
        return ("f1", "precision", "recall", "accuracy")

    def load_data(self):
        return load_token_data(self.cfg.data, seed=self.cfg.training.seed)

    def load_processor(self):
        return load_word_tokenizer(self.cfg.model)

    def load_model(self, label_names):
        from transformers import AutoModelForTokenClassification

        return load_classifier(AutoModelForTokenClassification, self.cfg.model, label_names)

    def encode(self, data, tokenizer):

        args = self.cfg.data
        continuation = continuation_ids(data.label_names)

        def tokenize(batch, target_column, split):
            # Training may label every sub-token; evaluation always scores one tag per word (the first sub-token).
            label_all = args.label_all_subtokens and split == "train"
            encoded = tokenizer(
                batch[args.tokens_column], is_split_into_words=True, truncation=True, max_length=args.max_seq_length
            )
            word_ids = [encoded.word_ids(i) for i in range(len(batch[target_column]))]
            encoded["labels"] = [
                align_labels(ids, tags, label_all, continuation)
                for ids, tags in zip(word_ids, batch[target_column], strict=True)
            ]
            # The last words of a sentence longer than max_seq_length get no sub-token: not trained, not scored.
            encoded[TRUNCATED] = [
                max((w for w in ids if w is not None), default=-1) + 1 < len(words)
                for ids, words in zip(word_ids, batch[args.tokens_column], strict=True)
            ]
            return encoded

        encoded = encode_splits(
            data.splits, tokenize, args.tags_column, num_proc=self.cfg.data.preprocessing_num_workers
        )
        for split, dataset in encoded.items():
            cut = sum(dataset[TRUNCATED])
            if cut:
                logger.warning(
                    "%d of %d %s sentences are longer than max_seq_length %d: their last words are not trained or "
                    "scored (raise --max_seq_length)",
                    cut,
                    len(dataset),
                    split,
                    args.max_seq_length,
                )
            encoded[split] = dataset.remove_columns(TRUNCATED)
        return encoded

    def data_collator(self, tokenizer):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)  # pads labels with -100

    def compute_metrics(self, data):

        return make_token_compute_metrics(data.label_names)

    def input_columns(self):
        return [("tokens", self.cfg.data.tokens_column)]

    @property
    def target_column(self):
        return self.cfg.data.tags_column

    def describe_example(self, example):
        return {"text": " ".join(example[self.cfg.data.tokens_column])}

    def _sequences(self, prediction, data):

        return tag_sequences(prediction.predictions, prediction.label_ids, data.label_names)

    def evaluation_report(self, prediction, data):

        return {"per_entity_type": entity_report(*self._sequences(prediction, data))}

    def baseline(self, data, prediction):
        """Every word tagged O: entity F1 0, and word accuracy the share of O tags (what the model must beat)."""

        gold, _ = self._sequences(prediction, data)
        scores = entity_scores(gold, [["O"] * len(row) for row in gold])
        return {"name": "all-O (no entity anywhere)", "scores": {"f1": scores["f1"], "accuracy": scores["accuracy"]}}

    def write_mistakes(self, out, raw_split, prediction, data):

        gold, predicted = self._sequences(prediction, data)
        words = self._scored_words(raw_split[self.cfg.data.tokens_column])
        write_entity_mistakes(out / MISCLASSIFIED, words, gold, predicted)

    def _scored_words(self, sentences) -> list[list[str]]:
        """The words that got a score, in order: one per first sub-token. Not simply a prefix of the sentence:
        a word the tokenizer turns into nothing (a control character in a fortune) has no tag position, and
        words past `max_seq_length` are cut."""
        tokenizer = self.load_processor()
        scored = []
        for start in range(0, len(sentences), 256):
            batch = [list(s) for s in sentences[start : start + 256]]
            encoded = tokenizer(
                batch, is_split_into_words=True, truncation=True, max_length=self.cfg.data.max_seq_length
            )
            for i, words in enumerate(batch):
                ids = encoded.word_ids(i)
                scored.append([words[w] for k, w in enumerate(ids) if w is not None and (k == 0 or ids[k - 1] != w)])
        return scored

    def summary_extras(self, data):
        args = self.cfg.data
        alignment = (
            "every sub-token of a word carries its tag (B- becomes I- after the first) in training"
            if args.label_all_subtokens
            else "a word's tag is on its first sub-token, -100 (ignored) on the others"
        )
        return {
            "notes": [
                f"Token classification, BIO/IOB2 tags{' (converted from IOB1)' if args.tag_scheme == 'iob1' else ''}; "
                f"{alignment}; scored per word with seqeval (entity-level, conlleval rules)"
            ]
        }

    def describe_labels(self, label_names):

        kinds = sorted({parse_tag(n)[1] for n in label_names} - {None})
        return f"Tags ({len(label_names)}): {', '.join(label_names)}; entity types: {', '.join(kinds)}"

    def report_files_note(self):
        return (
            "Precision, recall, F1 and support per entity type are in `metrics.json`; sentences whose entities "
            "were not all found in `misclassified.jsonl`."
        )
