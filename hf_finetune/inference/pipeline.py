"""What a prediction looks like, and the `transformers.pipeline` reference path that defines it.

The kind of model (one label, several labels, a number, one tag per word) is read from its
config.json; each gets its own output: a label and its probability; the labels at or above the
threshold it was trained with; a score; entity spans with character offsets. `predict` and
`evaluate` run the faster path beside it (`predictor`, `backends`: length-sorted batches, PyTorch or ONNX
Runtime); `load_model_pipeline` + `predict_texts` give what a user gets from `pipeline(model=DIR)`, and
the tests and `make bench-predict` check the fast path against it.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from hf_finetune.data.checks import require_columns, text_columns
from hf_finetune.data.files import read_data_file
from hf_finetune.errors import UserError
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
