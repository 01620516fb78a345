"""Scores of a model (PyTorch or exported) on labelled rows, as training reports them for the model's kind.

Scoring works from logits, so `evaluate` and the export's parity check (fp32 against int8) share it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hf_finetune.data.checks import require_columns
from hf_finetune.data.files import read_data_file
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import (
    classification_scores,
    entity_report,
    entity_scores,
    multilabel_report,
    multilabel_scores,
    per_class_report,
    regression_scores,
)
from hf_finetune.inference.image_inputs import read_image_inputs
from hf_finetune.inference.pipeline import gold_label_ids, read_inputs
from hf_finetune.inference.postprocess import MULTI_LABEL, REGRESSION, sigmoid
from hf_finetune.inference.predictor import Predictor

MAIN = {
    "single_label": ("accuracy", "macro_f1"),
    MULTI_LABEL: ("micro_f1", "macro_f1", "accuracy"),
    REGRESSION: ("pearson", "spearman", "mse"),
    "token_classification": ("f1", "precision", "recall"),
}


def label_names(config) -> list[str]:
    return [config.id2label[i] for i in range(len(config.id2label))]


def multi_hot_gold(values, names: list[str], separator: str) -> np.ndarray:
    """Multi-label gold cells (a list of names, or names joined by the separator) as a 0/1 array."""
    index = {n: i for i, n in enumerate(names)}
    gold = np.zeros((len(values), len(names)), dtype=int)
    for row, value in enumerate(values):
        cell = [v.strip() for v in value.split(separator)] if isinstance(value, str) else list(value or [])
        for name in (str(v) for v in cell if str(v).strip()):
            if name not in index:
                raise UserError(
                    f"row {row}: label '{name}' is not known to the model; it predicts {', '.join(names[:10])}"
                )
            gold[row, index[name]] = 1
    return gold


def numeric_gold(values, column: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        bad = next(i for i, v in enumerate(values) if not _is_number(v))
        raise UserError(f"column '{column}' must hold numbers; row {bad} holds {values[bad]!r}") from None


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def score_logits(kind: str, logits: np.ndarray, gold, config) -> dict:
    """Scores of sequence- or image-level logits against gold ids / multi-hot rows / numbers; `main` names the headline."""
    names = label_names(config)
    if kind == REGRESSION:
        return {"main": MAIN[kind], **regression_scores(gold, logits[:, 0].tolist())}
    if kind == MULTI_LABEL:
        threshold = float(getattr(config, "multi_label_threshold", 0.5))
        predicted = (sigmoid(logits) >= threshold).astype(int)
        return {"main": MAIN[kind], **multilabel_scores(gold, predicted), **multilabel_report(gold, predicted, names)}
    predicted = logits.argmax(-1).tolist()
    return {"main": MAIN["single_label"], **classification_scores(gold, predicted),
            **per_class_report(gold, predicted, names)}  # fmt: skip


def parse_gold(kind: str, values, config, column: str, separator: str = ",") -> object:
    if kind == REGRESSION:
        return numeric_gold(values, column)
    if kind == MULTI_LABEL:
        return multi_hot_gold(values, label_names(config), separator)
    return gold_label_ids(values, {name: i for i, name in enumerate(label_names(config))})


def word_lists(values) -> list[list[str]]:
    return [v.split() if isinstance(v, str) else [str(w) for w in v] for v in values]


def tag_lists(dataset, column: str, id2label: dict) -> list[list[str]]:
    """Gold BIO tags as names: a ClassLabel sequence, names, or the model's ids."""
    from datasets import ClassLabel

    feature = getattr(dataset.features[column], "feature", None)
    to_name = feature.int2str if isinstance(feature, ClassLabel) else (lambda t: id2label[int(t)])
    return [
        [t if isinstance(t, str) else to_name(int(t)) for t in (row.split() if isinstance(row, str) else row)]
        for row in dataset[column]
    ]


def evaluate_tags(predictor: Predictor, data_file: str, tokens_column: str, tags_column: str) -> dict:
    """Entity-level scores (seqeval) on a file of words and BIO tags: CoNLL text, JSONL, CSV or Parquet."""

    dataset = read_data_file(data_file)
    require_columns(dataset, [("tokens_column", tokens_column), ("tags_column", tags_column)], "input", data_file)
    words = word_lists(dataset[tokens_column])
    gold = tag_lists(dataset, tags_column, predictor.loaded.config.id2label)
    bad = [i for i, (w, g) in enumerate(zip(words, gold, strict=True)) if len(w) != len(g) or not w]
    if bad:
        raise UserError(f"rows {', '.join(map(str, bad[:5]))} of {data_file} have no words or a tag count that differs")
    predicted = predictor.predict_word_tags(words)
    return {"examples": len(words), "main": MAIN["token_classification"], **entity_scores(gold, predicted),
            "per_class": entity_report(gold, predicted)}  # fmt: skip


def evaluate_text(predictor: Predictor, data_file: str, columns: dict) -> dict:
    texts, pairs, dataset = read_inputs(data_file, columns["text_column"], columns.get("text_pair_column"))
    label_column = columns["label_column"]
    if label_column not in dataset.column_names:
        raise UserError(f"input {data_file} has no column '{label_column}' (--label_column); columns: "
                        f"{', '.join(dataset.column_names)}")  # fmt: skip
    config = predictor.loaded.config
    gold = parse_gold(predictor.kind, dataset[label_column], config, label_column, columns.get("separator", ","))
    logits = (
        np.stack(predictor.logits(predictor.encode(texts, pairs))) if texts else np.zeros((0, len(config.id2label)))
    )
    return {"examples": len(texts), **score_logits(predictor.kind, logits, gold, config)}


def evaluate_images(predictor: Predictor, data: str, columns: dict, split: str = "test") -> dict:
    """An image folder with class sub-folders, a file of image paths with a label column, or a data set split;
    unreadable images are left out of the scores and counted."""

    inputs = read_image_inputs(data, columns.get("image_column", "image"), split)
    label_column = columns["label_column"]
    values = inputs.labels if inputs.labels is not None else inputs.columns.get(label_column)
    if values is None:
        raise UserError(f"{data} has no gold labels: pass a folder with one sub-folder per class, or a file with a "
                        f"'{label_column}' column (--label_column)")  # fmt: skip
    logits, readable, errors = predictor.image_logits(inputs.sources)
    config = predictor.loaded.config
    gold = parse_gold(
        predictor.kind, [values[i] for i in readable], config, label_column, columns.get("separator", ",")
    )
    result = {"examples": len(readable), **score_logits(predictor.kind, logits, gold, config)}
    if errors:
        result["unreadable"] = {inputs.names[i]: reason for i, reason in errors.items()}
    return result


def evaluate_path(predictor: Predictor, data: str, columns: dict, split: str = "test") -> dict:
    if predictor.kind == "token_classification":
        return evaluate_tags(predictor, data, columns["tokens_column"], columns["tags_column"])
    if predictor.loaded.modality == "image":
        return evaluate_images(predictor, data, columns, split)
    if not Path(data).expanduser().is_file():
        raise UserError(f"--data {data} is not a file: pass a labelled .csv, .tsv, .json, .jsonl or .parquet file")
    return evaluate_text(predictor, data, columns)
