"""The files of mistakes a finished run leaves, one writer per kind of prediction.

Each writes JSON lines, worst first, quoting the example as the task describes it
(`Task.describe_example`): where to look for label noise or a systematic error.
They quote the data, so they stay local (`hf-finetune push` never uploads them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_finetune.data.tags import entity_spans
from hf_finetune.evaluation.metrics import multilabel_predictions, sigmoid, softmax


def write_lines(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_misclassified(path: Path, task, raw_split, prediction, label_names: list[str]) -> None:
    """One JSON line per wrong prediction, most confident mistakes first: where to look for label noise."""
    probabilities = softmax(prediction.predictions)
    predicted = probabilities.argmax(-1)
    wrong = np.flatnonzero(predicted != prediction.label_ids)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])]
    write_lines(
        path,
        (
            {
                **task.describe_example(raw_split[int(i)]),
                "label": label_names[prediction.label_ids[i]],
                "predicted": label_names[predicted[i]],
                "score": round(float(probabilities[i, predicted[i]]), 4),
            }
            for i in wrong
        ),
    )


def write_misclassified_multilabel(path: Path, task, raw_split, prediction, label_names, threshold: float) -> None:
    """One JSON line per example whose predicted label set differs from the gold set, worst first
    (largest gap between a label's probability and its gold 0/1)."""
    probabilities = sigmoid(prediction.predictions)
    gold = prediction.label_ids.astype(int)
    predicted = multilabel_predictions(prediction.predictions, threshold)
    wrong = np.flatnonzero((predicted != gold).any(axis=1))
    gap = np.abs(probabilities - gold).max(axis=1)
    wrong = wrong[np.argsort(-gap[wrong])]
    write_lines(
        path,
        (
            {
                **task.describe_example(raw_split[int(i)]),
                "labels": [label_names[j] for j in np.flatnonzero(gold[i])],
                "predicted": [label_names[j] for j in np.flatnonzero(predicted[i])],
                "scores": {label_names[j]: round(float(p), 4) for j, p in enumerate(probabilities[i])},
            }
            for i in wrong
        ),
    )


def write_entity_mistakes(path: Path, words: list[list[str]], gold: list[list[str]], predicted: list[list[str]]):
    """One JSON line per sentence whose predicted entities differ from the gold ones, most wrong words first.

    `words`, `gold`, `predicted`: per sentence, the scored words and their tags (truncated words are absent).
    """

    def spans(sentence_words, tags):
        return [[kind, " ".join(sentence_words[a:b])] for kind, a, b in entity_spans(tags)]

    rows = []
    for w, g, p in zip(words, gold, predicted, strict=True):
        gold_spans, predicted_spans = spans(w, g), spans(w, p)
        if gold_spans != predicted_spans:
            wrong = sum(a != b for a, b in zip(g, p, strict=True))
            rows.append(
                {
                    "text": " ".join(w),
                    "entities": gold_spans,
                    "predicted": predicted_spans,
                    "wrong_words": wrong,
                }
            )
    rows.sort(key=lambda r: -r["wrong_words"])
    write_lines(path, rows)


def write_largest_errors(path: Path, task, raw_split, gold, predicted) -> None:
    """Every example with its target and prediction, largest absolute error first."""
    gold, predicted = np.asarray(gold, dtype=float).ravel(), np.asarray(predicted, dtype=float).ravel()
    order = np.argsort(-np.abs(predicted - gold))
    write_lines(
        path,
        (
            {
                **task.describe_example(raw_split[int(i)]),
                "label": round(float(gold[i]), 4),
                "predicted": round(float(predicted[i]), 4),
                "error": round(float(predicted[i] - gold[i]), 4),
            }
            for i in order
        ),
    )
