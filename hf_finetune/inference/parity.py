"""Rows to check an export on, and the checks: fp32 logits against PyTorch, int8's main metric against fp32.

The rows are the model's own held-out rows where the run recorded them (`run_config.yaml`: its test file,
validation file or data set), else rows the user passes with `--data`. A metric needs gold labels; where
the rows have none, int8 is scored by its agreement with fp32's predictions instead (fp32 = 100 points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hf_finetune.data.files import load_named_splits, read_data_file
from hf_finetune.errors import UserError
from hf_finetune.evaluation.metrics import entity_scores
from hf_finetune.inference.image_inputs import dataset_images, folder_images, open_image
from hf_finetune.inference.postprocess import MULTI_LABEL, REGRESSION, TOKENS, sigmoid, word_tags
from hf_finetune.inference.predictor import Predictor
from hf_finetune.inference.scoring import parse_gold, score_logits, tag_lists, word_lists

RUN_CONFIG = "run_config.yaml"
COLUMN_DEFAULTS = {"text_column": "text", "text_pair_column": None, "label_column": "label", "image_column": "image",
                   "tokens_column": "tokens", "tags_column": "ner_tags", "multi_label_separator": ","}  # fmt: skip


@dataclass
class ParityRows:
    """Inputs (texts, word lists or image sources), optional pairs, raw gold values (or None), and where from."""

    inputs: list
    pairs: list | None
    gold: list | None
    source: str


def run_columns(folder: Path, overrides: dict, recorded: dict | None = None) -> tuple[dict, dict]:
    """(the run's data settings: `recorded`, else run_config.yaml's values, else {}; column names: the user's
    flags over the run's over the defaults)."""
    path = folder / RUN_CONFIG
    if recorded is None:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    values = recorded if isinstance(recorded, dict) else {}
    columns = {k: overrides.get(k) or values.get(k) or default for k, default in COLUMN_DEFAULTS.items()}
    return values, columns


def rows_from_dataset(dataset, kind: str, modality: str, columns: dict, base: Path | None, source: str,
                      id2label: dict) -> ParityRows:  # fmt: skip
    names = dataset.column_names
    label = columns["label_column"]
    if kind == TOKENS:
        tags = columns["tags_column"]
        return ParityRows(word_lists(dataset[columns["tokens_column"]]), None,
                          tag_lists(dataset, tags, id2label) if tags in names else None, source)  # fmt: skip
    if modality == "image":
        from datasets import Image

        column = columns["image_column"]
        if column not in names:
            raise UserError(f"{source} has no image column '{column}' (--image_column); columns: {', '.join(names)}")
        images = dataset_images(dataset, column, base=base, isimage=isinstance(dataset.features[column], Image))
        return ParityRows(images.sources, None, list(dataset[label]) if label in names else None, source)
    text, pair = columns["text_column"], columns["text_pair_column"]
    if text not in names:
        raise UserError(f"{source} has no text column '{text}' (--text_column); columns: {', '.join(names)}")
    pairs = [str(v) for v in dataset[pair]] if pair and pair in names else None
    return ParityRows([str(v) for v in dataset[text]], pairs, list(dataset[label]) if label in names else None, source)


def parity_rows(folder: Path, kind: str, modality: str, data: str | None, overrides: dict, limit: int,
                id2label: dict, recorded: dict | None = None) -> ParityRows:  # fmt: skip
    """The first `limit` rows of --data, else of the run's test or validation rows (`recorded`: the run's data
    settings where they are not in the folder's run_config.yaml)."""

    values, columns = run_columns(folder, overrides, recorded)
    source = data or values.get("test_file") or values.get("validation_file")
    if source and Path(source).expanduser().is_dir() and not (Path(source) / "dataset_dict.json").exists():
        rows = folder_images(Path(source).expanduser())  # an image folder with class sub-folders
        return ParityRows(rows.sources[:limit], None, rows.labels[:limit] if rows.labels else None, source)
    if source and Path(source).expanduser().is_file():
        dataset = read_data_file(str(Path(source).expanduser()))
        base = Path(source).expanduser().resolve().parent
    else:
        name = source or values.get("dataset_name")
        if not name:
            raise UserError(f"{folder} records no validation or test rows: pass --data FILE with "
                            "rows to check the export on")  # fmt: skip
        splits = load_named_splits(name, values.get("dataset_config_name") if not data else None)
        split = next((s for s in ("test", "validation") if s in splits), None)
        if split is None:
            raise UserError(
                f"{name} has no test or validation split: pass --data FILE with rows to check the export on"
            )
        dataset, base, source = splits[split], None, f"{name} ({split})"
    dataset = dataset.select(range(min(limit, len(dataset))))
    return rows_from_dataset(dataset, kind, modality, columns, base, str(source), id2label)


def opened_rows(folder: Path, modality: str, data: str | None, overrides: dict, limit: int,
                recorded: dict | None = None) -> tuple[list, ParityRows]:  # fmt: skip
    """(texts or opened images, the rows) of single-label parity rows (`parity_rows`); fewer than 2 rows, or an
    image that cannot be read, stops the check."""
    rows = parity_rows(folder, "single_label", modality, data, overrides, limit, {}, recorded)
    if len(rows.inputs) < 2:
        raise UserError(f"{rows.source} gives {len(rows.inputs)} rows; the parity check needs at least 2 (pass --data)")
    if modality == "text":
        return rows.inputs, rows
    images = []
    for i, source in enumerate(rows.inputs):
        image, reason = open_image(source)
        if image is None:
            raise UserError(f"parity row {i} cannot be read ({reason}): pass --data with readable images")
        images.append(image)
    return images, rows


def all_logits(predictor: Predictor, rows: ParityRows, kind: str):
    """(logits per row, the encodings for token models or None); unreadable images stop the check."""
    if predictor.loaded.modality == "image":
        logits, _, errors = predictor.image_logits(rows.inputs)
        if errors:
            first = next(iter(errors.items()))
            raise UserError(f"parity row {first[0]} cannot be read ({first[1]}): pass --data with readable images")
        return list(logits), None
    encodings = predictor.encode(rows.inputs, rows.pairs, split_words=kind == TOKENS)
    return predictor.logits(encodings), encodings


def max_abs_diff(a: list, b: list) -> float:
    return float(max((np.abs(x - y).max() for x, y in zip(a, b, strict=True)), default=0.0))


def main_metric(kind: str, logits: list, encodings, rows: ParityRows, reference, config) -> tuple[str, float]:
    """(name, value in points) of the task's main metric; against the gold labels, else agreement with `reference`
    (fp32's predictions), in which case fp32 itself scores 100."""
    if kind == TOKENS:
        predicted = word_tags(logits, encodings, [len(w) for w in rows.inputs], config)
        if rows.gold is not None:
            return "entity_f1", 100 * entity_scores(rows.gold, predicted)["f1"]
        ref = word_tags(reference, encodings, [len(w) for w in rows.inputs], config)
        same = sum(p == r for pr, rr in zip(predicted, ref, strict=True) for p, r in zip(pr, rr, strict=True))
        return "tag_agreement_with_fp32", 100 * same / max(1, sum(len(r) for r in ref))
    stacked = np.stack(logits)
    if rows.gold is not None:
        gold = parse_gold(kind, rows.gold, config, "label")
        scores = score_logits(kind, stacked, gold, config)
        name = scores["main"][0]
        return name, 100 * scores[name]
    ref = np.stack(reference)
    if kind == REGRESSION:
        return "pearson_with_fp32", 100 * float(np.corrcoef(stacked[:, 0], ref[:, 0])[0, 1])
    if kind == MULTI_LABEL:
        threshold = float(getattr(config, "multi_label_threshold", 0.5))
        on, ref_on = sigmoid(stacked) >= threshold, sigmoid(ref) >= threshold
        return "label_agreement_with_fp32", 100 * float((on == ref_on).mean())
    return "agreement_with_fp32", 100 * float((stacked.argmax(-1) == ref.argmax(-1)).mean())
