"""The fast batch inference path: tokenise once, sort by length, pad each batch only to its longest row,
run the forward pass (PyTorch under `inference_mode`, or ONNX Runtime), and put results back in input order.

Sorting by length is the evaluation trick training already uses: with short and long texts mixed, most
of a randomly formed batch is padding; sorted, a batch's rows are about as long as each other. Progress
and the measured throughput go to stderr, so stdout stays the predictions.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError
from hf_finetune.inference.backends import Loaded
from hf_finetune.inference.image_inputs import open_image
from hf_finetune.inference.postprocess import TOKENS, classification_rows, entity_rows, model_kind, word_tags

PROGRESS_FROM = 64  # fewer inputs finish before a progress bar would say anything useful


class Predictor:
    """predictor = Predictor(load_for_inference(DIR)); predictor.predict_texts(["..."]) -> [{label, score}]"""

    def __init__(self, loaded: Loaded, batch_size: int = 32, max_length: int | None = None, quiet: bool = False):
        if batch_size < 1:
            raise UserError(f"--batch_size must be at least 1, got {batch_size}")
        self.loaded, self.batch_size, self.quiet = loaded, batch_size, quiet
        self.kind = model_kind(loaded.config)
        tokenizer = loaded.tokenizer
        if tokenizer is not None and not tokenizer.is_fast:
            raise UserError(f"{loaded.folder} has no fast tokenizer (tokenizer.json); save one with the model")
        limit = min(getattr(tokenizer, "model_max_length", 512) or 512, 512) if tokenizer is not None else 0
        self.max_length = max_length or limit  # 512: BERT-style position tables; longer inputs are truncated
        self.last_seconds = 0.0

    # --- text ---
    def encode(self, texts: list, pairs: list[str] | None = None, split_words: bool = False) -> list:
        """The tokenizer's per-row encodings (ids, type ids, offsets, word ids), truncated, not padded."""
        tokenizer = self.loaded.tokenizer
        if tokenizer is None:
            raise UserError(f"{self.loaded.folder} is an image model: pass image files, not texts")
        if not texts:
            return []
        args = (texts, pairs) if pairs else (texts,)
        batch = tokenizer(*args, truncation=True, max_length=self.max_length, is_split_into_words=split_words)
        return batch.encodings

    def logits(self, encodings: list) -> list[np.ndarray]:
        """Logits per row in input order; batches are formed longest first (see the module docstring)."""
        tokenizer = self.loaded.tokenizer
        names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
        pad_id = tokenizer.pad_token_id or 0
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        results: list = [None] * len(encodings)
        with self._progress(len(encodings)) as bar:
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = max(len(encodings[i].ids) for i in rows)
                feed = {name: np.zeros((len(rows), width), dtype=np.int64) for name in names}
                if "input_ids" in feed:
                    feed["input_ids"][:] = pad_id
                for r, i in enumerate(rows):
                    e = encodings[i]
                    values = {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
                    for name in names:
                        feed[name][r, : len(e.ids)] = values[name]
                out = self.loaded.backend(feed)
                for r, i in enumerate(rows):
                    results[i] = out[r]
                bar.update(len(rows))
        return results

    def predict_texts(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        """single-label {label, score}; multi-label {labels, scores}; regression {score}; tokens {entities}."""
        if self.kind == TOKENS and pairs:
            raise UserError("a token-classification model reads one text per row; drop --text_pair_column")
        encodings = self.encode(texts, pairs)
        logits = self.logits(encodings)
        if not logits:
            return []
        if self.kind == TOKENS:
            return entity_rows(logits, encodings, texts, self.loaded.config)
        return classification_rows(np.stack(logits), self.loaded.config, self.kind)

    def predict_word_tags(self, sentences: list[list[str]]) -> list[list[str]]:
        """One tag per word of pre-split sentences (evaluation against gold BIO tags)."""
        encodings = self.encode(sentences, split_words=True)
        logits = self.logits(encodings)
        return word_tags(logits, encodings, [len(s) for s in sentences], self.loaded.config)

    # --- images ---
    def image_logits(self, sources: list) -> tuple[np.ndarray, list[int], dict[int, str]]:
        """(logits of the readable images, their row numbers, {row: why unreadable}); images are opened batch
        by batch (see image_inputs), and the image processor resizes and normalises them as in training."""

        processor = self.loaded.image_processor
        if processor is None:
            raise UserError(f"{self.loaded.folder} is a text model: pass texts, not images")
        out, readable, errors = [], [], {}
        with self._progress(len(sources)) as bar:
            for start in range(0, len(sources), self.batch_size):
                images = []
                for i in range(start, min(start + self.batch_size, len(sources))):
                    image, reason = open_image(sources[i])
                    if image is None:
                        errors[i] = reason
                    else:
                        readable.append(i)
                        images.append(to_rgb(image))
                if images:
                    pixels = processor(images=images, return_tensors="np")["pixel_values"].astype(np.float32)
                    out.append(self.loaded.backend({"pixel_values": pixels}))
                bar.update(min(self.batch_size, len(sources) - start))
        logits = np.concatenate(out) if out else np.zeros((0, len(self.loaded.config.id2label)), dtype=np.float32)
        return logits, readable, errors

    def predict_images(self, sources: list) -> list[dict]:
        """Rows as for texts; an unreadable image gets `{"error": reason}` instead of a prediction."""
        logits, readable, errors = self.image_logits(sources)
        rows: list[dict] = [{"error": errors[i]} if i in errors else {} for i in range(len(sources))]
        for i, row in zip(readable, classification_rows(logits, self.loaded.config, self.kind), strict=True):
            rows[i] = row
        return rows

    def _progress(self, total: int):
        return _Progress(total, disable=self.quiet or total < PROGRESS_FROM, owner=self)


class _Progress:
    """A tqdm bar over examples that prints the throughput when it closes."""

    def __init__(self, total: int, disable: bool, owner: Predictor):
        from tqdm.auto import tqdm

        self.total, self.owner, self.disable = total, owner, disable
        self.bar = tqdm(total=total, desc="Predicting", unit="ex", disable=disable, file=sys.stderr)

    def __enter__(self):
        self.started = time.perf_counter()
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()
        seconds = time.perf_counter() - self.started
        self.owner.last_seconds = seconds
        if not self.disable and exc[0] is None:
            engine = self.owner.loaded.backend.engine
            print(f"{self.total} examples in {seconds:.1f} s ({self.total / max(seconds, 1e-9):.1f}/s, {engine})",
                  file=sys.stderr)  # fmt: skip
        return False
