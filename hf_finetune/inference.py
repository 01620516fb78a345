"""Predict with, and evaluate, a finished model folder through `transformers.pipeline`.

Using the pipeline here, rather than our own forward pass, means `predict` and
`evaluate` exercise exactly what a user gets from `pipeline(..., model=DIR)`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .adapters import is_adapter_folder, load_adapter_model
from .errors import UserError
from .modeling import TOKENIZER_FILES, check_checkpoint_folder

OUTPUT_FORMATS = (".csv", ".jsonl")


def load_pipeline(model_dir: str, batch_size: int = 32):
    from transformers import pipeline

    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {model_dir} does not exist")
    check_checkpoint_folder(str(folder), allow_pickle=False)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not config.get("id2label"):
        raise UserError(f"{model_dir}/config.json has no id2label: not a classification model")
    if (folder / "preprocessor_config.json").exists() and not any((folder / f).exists() for f in TOKENIZER_FILES):
        raise UserError(
            f"{model_dir} is an image model and these commands read text; use "
            f'transformers.pipeline("image-classification", model="{model_dir}") on image files'
        )
    # An adapter folder (lora, ia3) is merged in memory: the pipeline then runs a plain model.
    model = load_adapter_model(folder) if is_adapter_folder(folder) else str(folder)
    return pipeline("text-classification", model=model, tokenizer=str(folder), batch_size=batch_size)


def predict_texts(classifier, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
    """Top label and its probability for each text (or text pair), with a progress bar."""
    from tqdm.auto import tqdm

    inputs = [{"text": t, "text_pair": p} for t, p in zip(texts, pairs, strict=True)] if pairs else texts
    max_length = classifier.tokenizer.model_max_length
    # A generator makes the pipeline stream batches, so the progress bar tracks real work.
    outputs = classifier((x for x in inputs), truncation=True, max_length=min(max_length, 512))
    results = []
    for out in tqdm(outputs, total=len(inputs), desc="Predicting", disable=len(inputs) < 64):
        top = out[0] if isinstance(out, list) else out
        results.append({"label": top["label"], "score": round(float(top["score"]), 4)})
    return results


def read_inputs(
    path: str, text_column: str, text_pair_column: str | None
) -> tuple[list[str], list[str] | None, object]:
    from .data import read_data_file, require_columns, text_columns

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
            writer.writerows(rows)
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


def evaluate_file(model_dir: str, data_file: str, text_column: str, label_column: str, text_pair_column=None) -> dict:
    from .data import require_columns
    from .metrics import classification_scores, per_class_report

    classifier = load_pipeline(model_dir)
    texts, pairs, dataset = read_inputs(data_file, text_column, text_pair_column)
    require_columns(dataset, [("label_column", label_column)], "input", data_file)
    label2id = {v: int(k) for k, v in classifier.model.config.id2label.items()}
    gold = gold_label_ids(dataset[label_column], label2id)
    predicted = [label2id[r["label"]] for r in predict_texts(classifier, texts, pairs)]
    names = [classifier.model.config.id2label[i] for i in range(len(label2id))]
    return {"examples": len(gold), **classification_scores(gold, predicted), **per_class_report(gold, predicted, names)}
