"""Predict with, and evaluate, a finished model folder through `transformers.pipeline`.

Using the pipeline here, rather than our own forward pass, means `predict` and
`evaluate` exercise exactly what a user gets from `pipeline(..., model=DIR)`. The kind of
model (one label, several labels, a number, one tag per word) is read from its config.json;
each gets its own output: a label and its probability; the labels at or above the threshold
it was trained with; a score; entity spans with character offsets.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from hf_finetune.data.checks import numeric_targets, require_columns, text_columns
from hf_finetune.data.files import read_data_file
from hf_finetune.data.labels import tag_rows, word_list
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import (
    classification_scores,
    entity_report,
    entity_scores,
    per_class_report,
    regression_scores,
)
from hf_finetune.modeling.adapters import is_adapter_folder, load_adapter_model
from hf_finetune.modeling.loading import check_checkpoint_folder, checkpoint_modality
from hf_finetune.tasks.multi_task import is_multitask_folder

OUTPUT_FORMATS = (".csv", ".jsonl")
SINGLE_LABEL, MULTI_LABEL, REGRESSION, TOKENS = "single_label", "multi_label", "regression", "token_classification"


def model_kind(config) -> str:
    """What the model predicts, from its config (a dict or a PretrainedConfig)."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    if any(str(a).endswith("ForTokenClassification") for a in get("architectures") or []):
        return TOKENS
    if get("problem_type") == "regression":
        return REGRESSION
    if get("problem_type") == "multi_label_classification":
        return MULTI_LABEL
    return SINGLE_LABEL


def load_model_pipeline(model_dir: str, batch_size: int = 32):
    from transformers import pipeline

    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {model_dir} does not exist")
    check_checkpoint_folder(str(folder), allow_pickle=False)

    if is_multitask_folder(folder):
        raise UserError(
            f"{model_dir} is a multi-task model (several heads): use `hf-finetune predict --model {model_dir} "
            "--task NAME` (or --task all); its scores per task are in its metrics.json"
        )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not config.get("id2label"):
        raise UserError(f"{model_dir}/config.json has no id2label: not a classification model")
    if checkpoint_modality(folder) == "image":
        raise UserError(
            f"{model_dir} is an image model and these commands read text; use "
            f'transformers.pipeline("image-classification", model="{model_dir}") on image files'
        )
    # An adapter folder (lora, ia3) is merged in memory: the pipeline then runs a plain model.
    model = load_adapter_model(folder) if is_adapter_folder(folder) else str(folder)
    if model_kind(config) == TOKENS:
        # `first`: a word's tag is its first sub-token's, as the model was trained (see tasks/token_classification).
        return pipeline(
            "token-classification",
            model=model,
            tokenizer=str(folder),
            batch_size=batch_size,
            aggregation_strategy="first",
        )
    return pipeline("text-classification", model=model, tokenizer=str(folder), batch_size=batch_size)


def predict_texts(classifier, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
    """One prediction per text (or text pair), with a progress bar:
    single-label {label, score}; multi-label {labels, scores}; regression {score}; tokens {entities}."""
    from tqdm.auto import tqdm

    kind = model_kind(classifier.model.config)
    if kind == TOKENS and pairs:
        raise UserError("a token-classification model reads one text per row; drop --text_pair_column")
    inputs = [{"text": t, "text_pair": p} for t, p in zip(texts, pairs, strict=True)] if pairs else texts
    max_length = min(classifier.tokenizer.model_max_length, 512)
    # A generator makes the pipeline stream batches, so the progress bar tracks real work.
    if kind == TOKENS:
        outputs = classifier(x for x in inputs)
    else:
        extra = {"top_k": None} if kind == MULTI_LABEL else {}
        outputs = classifier((x for x in inputs), truncation=True, max_length=max_length, **extra)
    threshold = float(getattr(classifier.model.config, "multi_label_threshold", 0.5))
    results = []
    for text, out in tqdm(
        zip(texts, outputs, strict=False), total=len(inputs), desc="Predicting", disable=len(inputs) < 64
    ):
        if kind == TOKENS:
            results.append({"entities": [entity_span(text, e) for e in out]})
        elif kind == MULTI_LABEL:
            scores = {o["label"]: round(float(o["score"]), 4) for o in out}
            results.append({"labels": [name for name, p in scores.items() if p >= threshold], "scores": scores})
        elif kind == REGRESSION:
            top = out[0] if isinstance(out, list) else out
            results.append({"score": round(float(top["score"]), 4)})
        else:
            top = out[0] if isinstance(out, list) else out
            results.append({"label": top["label"], "score": round(float(top["score"]), 4)})
    return results


def entity_span(text: str, entity: dict) -> dict:
    """A pipeline entity as {type, text, start, end, score}; `text[start:end]` is the entity as written."""
    start, end = int(entity["start"]), int(entity["end"])
    return {
        "type": entity["entity_group"],
        "text": text[start:end],
        "start": start,
        "end": end,
        "score": round(float(entity["score"]), 4),
    }


def read_inputs(
    path: str, text_column: str, text_pair_column: str | None
) -> tuple[list[str], list[str] | None, object]:

    dataset = read_data_file(path)
    require_columns(dataset, text_columns(text_column, text_pair_column), "input", path)
    texts = ["" if t is None else str(t) for t in dataset[text_column]]
    pairs = ["" if t is None else str(t) for t in dataset[text_pair_column]] if text_pair_column else None
    return texts, pairs, dataset


def check_prediction_output(output: str | None) -> None:
    """Called before the model loads, so a wrong suffix costs no time."""
    if output is not None and Path(output).suffix not in OUTPUT_FORMATS:
        raise UserError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got {output}")


def write_predictions(rows: list[dict], output: str | None) -> None:
    """CSV or JSONL by the output's suffix (checked by `check_prediction_output`); JSONL on stdout by default."""
    if output is None:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")  # never leave a half-written predictions file
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["text", "label", "score"])
            writer.writeheader()
            # Lists and mappings (labels, scores, entities) as JSON in their cell.
            writer.writerows(
                {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in row.items()}
                for row in rows
            )
        else:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def gold_label_ids(values, label2id: dict[str, int]) -> list[int]:
    """Gold labels as model ids: by name, or as ids when the file holds integers the names lack."""
    as_text = [str(v) for v in values]
    unknown = sorted(set(as_text) - set(label2id))
    if not unknown:
        return [label2id[v] for v in as_text]
    if all(isinstance(v, int) and 0 <= v < len(label2id) for v in values):
        return list(values)
    raise UserError(
        f"labels not known to the model: {', '.join(unknown[:10])}; it predicts {', '.join(list(label2id)[:10])}"
    )


def evaluate_file(
    model_dir: str,
    data_file: str,
    text_column: str,
    label_column: str,
    text_pair_column=None,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
) -> dict:
    """Scores on a labelled file, as training reports them for the model's kind (`main` names the headline)."""

    classifier = load_model_pipeline(model_dir)
    kind = model_kind(classifier.model.config)
    if kind == TOKENS:
        return evaluate_tags(classifier, data_file, tokens_column, tags_column)
    if kind == MULTI_LABEL:
        raise UserError(
            "evaluate reads single-label, regression and token-classification models; for multi-label "
            "models use the scores in the run's metrics.json or `predict` and score the labels yourself"
        )
    texts, pairs, dataset = read_inputs(data_file, text_column, text_pair_column)
    require_columns(dataset, [("label_column", label_column)], "input", data_file)
    if kind == REGRESSION:
        gold = numeric_targets(dataset, label_column, "input")[label_column]
        predicted = [r["score"] for r in predict_texts(classifier, texts, pairs)]
        scores = regression_scores(gold, predicted)
        return {"examples": len(gold), "main": ("pearson", "spearman", "mse"), **scores}
    label2id = {v: int(k) for k, v in classifier.model.config.id2label.items()}
    gold = gold_label_ids(dataset[label_column], label2id)
    predicted = [label2id[r["label"]] for r in predict_texts(classifier, texts, pairs)]
    names = [classifier.model.config.id2label[i] for i in range(len(label2id))]
    return {
        "examples": len(gold),
        "main": ("accuracy", "macro_f1"),
        **classification_scores(gold, predicted),
        **per_class_report(gold, predicted, names),
    }


def predict_word_tags(classifier, sentences: list[list[str]], batch_size: int = 32) -> list[list[str]]:
    """One tag per word: the first sub-token's prediction, as training scored it (words past 512 tokens: O)."""
    import torch

    tokenizer, model = classifier.tokenizer, classifier.model
    id2label = model.config.id2label
    tags = []
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        encoded = tokenizer(batch, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
        with torch.no_grad():
            predicted = model(**encoded.to(model.device)).logits.argmax(-1).tolist()
        for i, words in enumerate(batch):
            first = {}
            for position, word in enumerate(encoded.word_ids(i)):
                if word is not None and word not in first:
                    first[word] = id2label[predicted[i][position]]
            tags.append([first.get(w, "O") for w in range(len(words))])
    return tags


def evaluate_tags(classifier, data_file: str, tokens_column: str, tags_column: str) -> dict:
    """Entity-level scores (seqeval) on a file of words and BIO tags: CoNLL text, JSONL, CSV or Parquet."""
    from datasets import ClassLabel

    dataset = read_data_file(data_file)
    require_columns(dataset, [("tokens_column", tokens_column), ("tags_column", tags_column)], "input", data_file)
    words = [word_list(v) for v in dataset[tokens_column]]
    feature = getattr(dataset.features[tags_column], "feature", None)
    id2label = classifier.model.config.id2label
    if isinstance(feature, ClassLabel):
        gold = tag_rows(dataset, tags_column)
    else:  # names, or the model's ids
        gold = [
            [t if isinstance(t, str) else id2label[int(t)] for t in (row.split() if isinstance(row, str) else row)]
            for row in dataset[tags_column]
        ]
    bad = [i for i, (w, g) in enumerate(zip(words, gold, strict=True)) if len(w) != len(g) or not w]
    if bad:
        raise UserError(f"rows {', '.join(map(str, bad[:5]))} of {data_file} have no words or a tag count that differs")
    predicted = predict_word_tags(classifier, words)
    return {
        "examples": len(words),
        "main": ("f1", "precision", "recall"),
        **entity_scores(gold, predicted),
        "per_class": entity_report(gold, predicted),
    }
