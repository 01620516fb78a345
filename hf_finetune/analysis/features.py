"""Frozen backbones as feature extractors: pooled features, computed once and cached on disk.

The oldest transfer recipe for small data: run the pretrained network once over every
example, keep one vector per example, and fit a classical classifier on the vectors
(`hf_finetune.analysis.classical`). The same extractor serves text checkpoints (BERT-style, through
the tokenizer) and image checkpoints (ViT-style, through the image processor), loaded with
`AutoModel`, so a fine-tuned classifier folder gives its backbone too (a checkpoint and its
fine-tuned version can be compared or concatenated).

Pooling:
- `cls`: the first token's final hidden state (BERT's [CLS], ViT's class token).
- `mean`: the mean over real tokens, weighted by the attention mask, so padding never enters
  a sentence's features; for ViT, the mean over the patch tokens (the class token excluded).

Texts are batched by length (sorted, then put back in order): less padding, and a text's
features do not depend on which texts share its batch.

The cache is a folder: one `<split>.safetensors` (features float32, labels int64) per split and
`features.json` (ids, label names, backbones with their dimension slices, pooling, the request
that produced it). No pickle anywhere.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_finetune.data.images import IMAGE_REF_COLUMN
from hf_finetune.errors import UserError, first_line
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.modeling.loading import (
    check_checkpoint_folder,
    check_remote_code,
    recorded_checkpoint_name,
    resolve_checkpoint,
)
from hf_finetune.tasks import TASKS

logger = logging.getLogger("hf_finetune")

POOLINGS = ("cls", "mean")
FEATURES_JSON = "features.json"
FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    """One split's pooled features with its labels, example ids and what produced them."""

    features: np.ndarray  # float32 (n, total hidden size); backbones side by side
    labels: np.ndarray  # int64 (n,), ids into label_names
    ids: list[str]
    label_names: list[str]
    # model(s), pooling, max_seq_length, column, backbones: [{model, dim, start, end}], ...
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.features = np.asarray(self.features, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not (len(self.features) == len(self.labels) == len(self.ids)):
            raise ValueError(
                f"features ({len(self.features)}), labels ({len(self.labels)}) and ids ({len(self.ids)}) differ in length"
            )

    def subset(self, indices) -> FeatureSet:
        indices = np.asarray(indices, dtype=np.int64)
        return FeatureSet(
            self.features[indices], self.labels[indices], [self.ids[i] for i in indices], self.label_names, self.meta
        )


# --- Extraction ---


def extract_features(
    model_name_or_path: str,
    dataset,
    *,
    column: str,
    pooling: str = "cls",
    batch_size: int = 64,
    max_seq_length: int = 128,
    revision: str | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    backbone=None,
) -> np.ndarray:
    """Pooled final hidden states of the frozen backbone, float32 of shape (len(dataset), hidden).

    `dataset` is a `datasets.Dataset` (its `column` holds texts or images) or a list of texts or
    PIL images. `backbone` reuses an already loaded `Backbone` (prediction on many calls).
    """
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got '{pooling}'")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    values = _column_values(dataset, column)
    backbone = backbone or load_backbone(
        model_name_or_path, revision=revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
    )
    if not values:
        return np.zeros((0, backbone.hidden_size), dtype=np.float32)
    return backbone.encode(values, pooling, batch_size, max_seq_length, progress)


def _column_values(dataset, column: str) -> list:
    if isinstance(dataset, (list, tuple)):
        return list(dataset)
    if column not in dataset.column_names:
        raise UserError(f"column '{column}' not found; available columns: {', '.join(dataset.column_names)}")
    return list(dataset[column])


def extract_splits(
    models: list[str],
    splits: dict,
    label_names: list[str],
    *,
    column: str,
    label_column: str,
    pooling: str = "cls",
    batch_size: int = 64,
    max_seq_length: int = 128,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    progress: bool = True,
    id_column: str | None = None,
) -> dict[str, FeatureSet]:
    """Every split through every backbone once; several backbones' features are concatenated side by side.

    `meta["backbones"]` records each backbone's slice `[start, end)` of the feature columns, and
    `meta["extract_seconds"]` the wall time per split (all backbones).
    """
    if not models:
        raise UserError("no backbone given: pass --model (twice, or comma-separated, for two backbones)")
    if len(set(models)) != len(models):
        raise UserError(f"the same backbone is given twice: {', '.join(models)}")
    blocks: dict[str, list[np.ndarray]] = {split: [] for split in splits}
    seconds = dict.fromkeys(splits, 0.0)
    backbones, start = [], 0
    extract = {"column": column, "pooling": pooling, "batch_size": batch_size, "max_seq_length": max_seq_length,
               "progress": progress}  # fmt: skip
    for name in models:
        backbone = load_backbone(
            name, revision=revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
        )
        for split, dataset in splits.items():
            began = time.perf_counter()
            blocks[split].append(extract_features(name, dataset, backbone=backbone, **extract))
            seconds[split] += time.perf_counter() - began
        dim = backbone.hidden_size
        backbones.append(
            {"model": backbone.name, "modality": backbone.modality, "dim": dim, "start": start, "end": start + dim}
        )
        start += dim
        del backbone
    meta = {
        "models": [b["model"] for b in backbones],
        "backbones": backbones,
        "pooling": pooling,
        "max_seq_length": max_seq_length,
        "column": column,
        "modality": backbones[0]["modality"],
        "extract_seconds": {split: round(s, 2) for split, s in seconds.items()},
    }
    out = {}
    for split, dataset in splits.items():
        ids = [str(v) for v in dataset[id_column]] if id_column else [f"{split}[{i}]" for i in range(len(dataset))]
        out[split] = FeatureSet(
            np.concatenate(blocks[split], axis=1), np.asarray(dataset[label_column]), ids, list(label_names), meta
        )
    return out


# --- The cache on disk ---


def save_features(path: str | Path, sets: dict[str, FeatureSet], request: dict | None = None) -> Path:
    """Write `<split>.safetensors` per split and `features.json` (written last: its presence means complete)."""
    from safetensors.numpy import save_file

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"features output {folder} is a file; choose a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FEATURES_JSON).unlink(missing_ok=True)
    first = next(iter(sets.values()))
    for split, fs in sets.items():
        save_file({"features": fs.features, "labels": fs.labels}, str(folder / f"{split}.safetensors"))
    index = {
        "format_version": FORMAT_VERSION,
        "label_names": first.label_names,
        "meta": first.meta,
        "request": request or {},
        "splits": {split: {"n": len(fs.ids), "ids": fs.ids} for split, fs in sets.items()},
    }
    (folder / FEATURES_JSON).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return folder


def read_index(path: str | Path) -> dict:
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"features {folder} do not exist; create them with `hf-finetune features`")
    if folder.is_file() and folder.name == FEATURES_JSON:
        folder = folder.parent
    index_path = folder / FEATURES_JSON
    if not index_path.is_file():
        raise UserError(
            f"{folder} holds no {FEATURES_JSON}: not a (finished) features folder from `hf-finetune features`"
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {index_path}: {first_line(exc)}") from None
    if not isinstance(index, dict) or index.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{index_path} is not a features index this version reads (format_version {FORMAT_VERSION})")
    return index


def load_features(path: str | Path) -> dict[str, FeatureSet]:
    """The cached splits, each a `FeatureSet`."""
    from safetensors.numpy import load_file

    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    index = read_index(folder)
    out = {}
    for split, info in index["splits"].items():
        try:
            arrays = load_file(str(folder / f"{split}.safetensors"))
        except Exception as exc:
            raise UserError(f"cannot read the {split} features in {folder}: {first_line(exc)}") from None
        out[split] = FeatureSet(arrays["features"], arrays["labels"], info["ids"], index["label_names"], index["meta"])
    return out


def cached_or_extract(out: str | Path, request: dict, extract, overwrite: bool = False) -> tuple[dict, bool]:
    """(feature sets, reused): the cache in `out` when it was made by the same `request`, else `extract()` saved there.

    A folder holding features of another request is refused without `overwrite`, so one cache never
    silently stands for another model or data set.
    """
    folder = Path(out)
    if (folder / FEATURES_JSON).is_file() and not overwrite:
        index = read_index(folder)
        if index.get("request") == request:
            logger.info("features in %s were made by the same request: reusing them", folder)
            return load_features(folder), True
        differ = sorted(
            k for k in set(index.get("request", {})) | set(request) if index["request"].get(k) != request.get(k)
        )
        raise UserError(
            f"{folder} holds features of another request (differs in: {', '.join(differ)}); pass --overwrite or "
            "choose another --out"
        )
    if folder.exists() and not folder.is_dir():
        raise UserError(f"features output {folder} is a file; choose a folder path")
    sets = extract()
    save_features(folder, sets, request)
    return sets, False


def parse_models(values: list[str] | None) -> list[str]:
    """`--model A --model B` or `--model A,B` -> [A, B]."""
    return [m.strip() for v in values or [] for m in v.split(",") if m.strip()]


# --- From a run config (recipe + overrides): the same splits the Trainer would see ---


def input_column(cfg) -> str:
    """The column the backbone reads: the image column for image tasks, else the text column."""
    if cfg.run.task == "image_classification":
        return cfg.data.image_column
    if cfg.run.task != "text_classification":
        raise UserError(f"features are for text_classification and image_classification, not {cfg.run.task}")
    if cfg.data.text_pair_column:
        raise UserError("features read one text per example; sentence pairs (text_pair_column) are not supported")
    return cfg.data.text_column


def load_config_data(cfg):
    """The task's `LabelledData` (train, validation, test) exactly as `training.run` loads it."""

    if cfg.data.multi_label:
        raise UserError("features + classical heads are single-label; remove --multi_label")
    input_column(cfg)
    return TASKS.get(cfg.run.task)(cfg).load_data()


def feature_request(cfg, models: list[str], pooling: str) -> dict:
    """What a cache was made from: a cache is reused only for the same request."""
    import dataclasses

    data = {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in ("data_private", "extra_metrics")}
    return {
        "task": cfg.run.task,
        "models": [recorded_checkpoint_name(m) for m in models],
        "revision": cfg.model.revision,
        "pooling": pooling,
        "seed": cfg.training.seed,
        "data": data,
    }


def check_backbones(models: list[str], cfg) -> None:
    """The cheap checks (folder exists, weights, shipped code) before any data is read."""

    for name in models:
        checkpoint = resolve_checkpoint(name)
        check_checkpoint_folder(checkpoint, cfg.model.allow_pickle)
        check_remote_code(checkpoint, cfg.model)


def features_for_config(
    cfg, models: list[str], out, *, pooling: str = "cls", batch_size: int = 64, overwrite: bool = False,
    data=None, progress: bool = True,
) -> tuple[dict[str, FeatureSet], bool]:  # fmt: skip
    """Features of every split of the config's data through `models`, cached in `out` (reused when unchanged)."""

    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got '{pooling}'")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    column = input_column(cfg)
    check_backbones(models, cfg)
    request = feature_request(cfg, models, pooling)

    def extract():
        labelled = data or load_config_data(cfg)
        first = next(iter(labelled.splits.values()))
        return extract_splits(
            models, labelled.splits, labelled.label_names, column=column, label_column=cfg.data.label_column,
            pooling=pooling, batch_size=batch_size, max_seq_length=cfg.data.max_seq_length,
            revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
            allow_pickle=cfg.model.allow_pickle, progress=progress,
            id_column=IMAGE_REF_COLUMN if IMAGE_REF_COLUMN in first.column_names else None,
        )  # fmt: skip

    return cached_or_extract(out, request, extract, overwrite=overwrite)
