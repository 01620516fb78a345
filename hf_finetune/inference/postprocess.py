"""Logits -> the rows `predict` writes, for every head kind, the same for PyTorch and ONNX Runtime.

The rules are those of `transformers.pipeline` (what `predict` used before this module, and what a user
gets from `pipeline(model=DIR)`): softmax for one label, sigmoid for several (labels at or above the
threshold the model was trained with), the raw value for regression, and for entities the `first`
aggregation (a word's tag is its first sub-token's) with B-/I- grouping. The tests compare the two.
"""

from __future__ import annotations

import numpy as np

from hf_finetune.inference.pipeline import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TOKENS, model_kind

__all__ = ["MULTI_LABEL", "REGRESSION", "SINGLE_LABEL", "TOKENS", "classification_rows", "entity_rows", "model_kind"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def classification_rows(logits: np.ndarray, config, kind: str) -> list[dict]:
    """One row per example: {label, score}; multi-label {labels, scores} (scores highest first); {score}."""
    names = [config.id2label[i] for i in range(logits.shape[-1])]
    if kind == REGRESSION:
        return [{"score": round(float(v[0]), 4)} for v in logits]
    if kind == MULTI_LABEL:
        threshold = float(getattr(config, "multi_label_threshold", 0.5))
        rows = []
        for probabilities in sigmoid(logits):
            order = sorted(range(len(names)), key=lambda i: -probabilities[i])  # stable: ties keep label order
            scores = {names[i]: round(float(probabilities[i]), 4) for i in order}
            rows.append({"labels": [n for n, p in scores.items() if p >= threshold], "scores": scores})
        return rows
    probabilities = softmax(logits)
    return [{"label": names[int(p.argmax())], "score": round(float(p.max()), 4)} for p in probabilities]


def _tag(name: str) -> tuple[str, str]:
    """("B" or "I", entity type) of a tag; tags without a B-/I- prefix count as continuations (as pipeline)."""
    if name.startswith(("B-", "I-")):
        return name[0], name[2:]
    return "I", name


def word_predictions(probabilities: np.ndarray, word_ids: list, offsets: list, id2label: dict) -> list[dict]:
    """One entry per word: its first sub-token's best tag, that tag's probability, and the word's characters."""
    words: list[dict] = []
    last = None
    for position, word in enumerate(word_ids):
        if word is None:
            continue
        start, end = (int(x) for x in offsets[position])
        if word != last:
            best = int(probabilities[position].argmax())
            words.append({"tag": id2label[best], "score": float(probabilities[position][best]), "start": start})
            last = word
        words[-1]["end"] = end
    return words


def group_entities(text: str, words: list[dict]) -> list[dict]:
    """Adjacent words of one type (not starting with B-) form one entity; `O` groups are dropped."""
    groups: list[list[dict]] = []
    for word in words:
        bi, tag = _tag(word["tag"])
        if groups and bi != "B" and _tag(groups[-1][-1]["tag"])[1] == tag:
            groups[-1].append(word)
        else:
            groups.append([word])
    entities = []
    for group in groups:
        kind = _tag(group[0]["tag"])[1]
        if kind == "O":
            continue
        start, end = group[0]["start"], group[-1]["end"]
        score = float(np.mean([w["score"] for w in group]))
        entities.append({"type": kind, "text": text[start:end], "start": start, "end": end, "score": round(score, 4)})
    return entities


def entity_rows(logits: np.ndarray, encodings: list, texts: list[str], config) -> list[dict]:
    """{entities: [{type, text, start, end, score}]} per text; `encodings` are the tokenizer's per-text encodings."""
    rows = []
    for row_logits, encoding, text in zip(logits, encodings, texts, strict=True):
        n = len(encoding.ids)
        probabilities = softmax(row_logits[:n])
        words = word_predictions(probabilities, encoding.word_ids, encoding.offsets, config.id2label)
        rows.append({"entities": group_entities(text, words)})
    return rows


def word_tags(logits: np.ndarray, encodings: list, n_words: list[int], config) -> list[list[str]]:
    """One tag per given word: its first sub-token's (words cut off by truncation: O), as training scored them."""
    tags = []
    for row_logits, encoding, count in zip(logits, encodings, n_words, strict=True):
        first: dict[int, str] = {}
        for position, word in enumerate(encoding.word_ids):
            if word is not None and word not in first:
                first[word] = config.id2label[int(row_logits[position].argmax())]
        tags.append([first.get(w, "O") for w in range(count)])
    return tags
