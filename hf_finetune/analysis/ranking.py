"""`hf-finetune rank`: which checkpoint to start from, measured on the user's data before any fine-tuning.

Choosing among candidate checkpoints comes before choosing a strategy. Measuring transferability
across a model zoo on frozen features (You et al. 2021, LogME; Nguyen et al. 2020, LEEP; TLlib's
model ranking) costs one forward pass per checkpoint over a sample of the data, against a fine-tune
per checkpoint. For every candidate this module measures, on the same stratified sample:

- the cross-validated linear probe and kNN accuracy and LogME (`transferability`, as `advise` does);
- LEEP (Nguyen et al., ICML 2020, https://arxiv.org/abs/2002.12462) where the checkpoint has its own
  classifier head: how well the source label distribution it predicts explains the target labels.

Candidates are ranked by the probe (the measure `advise` already decides with, and the one that tracked
fine-tuned accuracy best in `docs/which_checkpoint.md`), ties broken by LogME; every measure is shown, so
a user sees where they disagree. The best candidate then gets `advise`'s strategy and a runnable recipe.
Features are cached per checkpoint (`features.cached_or_extract`), so a rerun with one more candidate
computes only that one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_finetune.analysis.advisor import Measurements, finetuning_rate, recipe_values, recommend, training_sample
from hf_finetune.analysis.features import (
    cached_or_extract,
    extract_splits,
    feature_request,
    input_column,
)
from hf_finetune.analysis.transferability import chance_accuracy, knn_accuracy, linear_probe_accuracy, logme
from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError
from hf_finetune.modeling.loading import PROCESSOR_FILES, TOKENIZER_FILES, resolve_checkpoint

logger = logging.getLogger("hf_finetune")

MODALITY = {"text_classification": "text", "image_classification": "image"}
MEASURES = ("probe", "knn", "logme", "leep")
# Two probes closer than this (accuracy) are a tie within the noise of a 5-fold estimate on ~1,000 rows.
TIE_POINTS = 0.01


def leep(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """LEEP: (1/n) sum_i log sum_z P(y_i | z) theta(x_i)_z, with P(y | z) the empirical conditional of the
    target label given the source label under the checkpoint's own predictions theta (Nguyen et al. 2020).
    0 is the maximum (target fully explained); more negative is worse."""
    theta = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    joint = np.zeros((int(labels.max()) + 1, theta.shape[1]))
    np.add.at(joint, labels, theta)  # sum over examples of theta(x)_z for each target label y
    joint /= len(labels)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-12)  # P(y | z)
    expected = (theta @ conditional.T)[np.arange(len(labels)), labels]  # sum_z P(y_i | z) theta_z
    return float(np.mean(np.log(np.maximum(expected, 1e-12))))


@dataclass
class Candidate:
    model: str
    measurements: Measurements
    leep: float | None = None
    leep_note: str = ""  # why LEEP is missing
    seconds: float = 0.0
    rank: int = 0
    reasons: list[str] = field(default_factory=list)

    def measure(self, name: str) -> float | None:
        m = self.measurements
        return {"probe": m.probe_accuracy, "knn": m.knn_accuracy, "logme": m.logme, "leep": self.leep}[name]

    def as_dict(self) -> dict:
        return {"rank": self.rank, "model": self.model, **{k: self.measure(k) for k in MEASURES},
                "logme_shuffled": self.measurements.logme_shuffled, "chance": self.measurements.chance_accuracy,
                "leep_note": self.leep_note, "num_blocks": self.measurements.num_blocks,
                "seconds": round(self.seconds, 2), "reasons": self.reasons}  # fmt: skip


def readers(checkpoint: str) -> str | None:
    """`text`, `image`, `both` or `none`: what a local folder ships (a tokenizer, an image processor); None when unknown."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        return None  # a Hub id: known only once loaded
    text = any((folder / f).is_file() for f in TOKENIZER_FILES)
    image = any((folder / f).is_file() for f in PROCESSOR_FILES)
    return "text" if text and not image else "image" if image and not text else "both" if text else "none"


def check_candidates(models: list[str], task: str) -> None:
    """Refuse, before any work, candidates that cannot read this data: wrong modality, or no tokenizer/processor."""
    if len(models) < 2:
        raise UserError(f"rank compares checkpoints: give at least two in --models (got {len(models)})")
    if len(set(models)) != len(models):
        raise UserError(f"--models names a checkpoint twice: {', '.join(models)}")
    if task not in MODALITY:
        raise UserError(f"rank is for {' and '.join(MODALITY)}, not {task}")
    wanted = MODALITY[task]
    reader = "tokenizer" if wanted == "text" else "image processor"
    for name in models:
        modality = readers(resolve_checkpoint(name))
        if modality == "none":
            raise UserError(f"candidate {name} has neither a tokenizer nor an image processor: it cannot read the "
                            f"{wanted} data; save its {reader} into the folder or drop it from --models")  # fmt: skip
        if modality not in (None, "both", wanted):
            raise UserError(f"candidate {name} is an {modality} checkpoint (no {reader}) and the task "
                            f"{task} reads {wanted}: drop it from --models")  # fmt: skip


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/").replace("packaged:", ""))[-80:]


def sample_data(values: dict, sample: int, seed: int):
    """(cfg, the stratified sample of the training split, its labels, label names, examples per class)."""
    cfg, data, rows, labels, counts = training_sample(values, sample, seed)
    per_class = {n: int(c) for n, c in zip(data.label_names, counts, strict=True)}
    return cfg, data.splits["train"].select(rows), labels[rows], data.label_names, per_class


def candidate_features(cfg, model: str, dataset, label_names, cache: Path, pooling: str, sample: int,
                       seed: int) -> np.ndarray:  # fmt: skip
    """Pooled frozen features of the sample through `model`, cached in `cache` (reused for the same request)."""
    request = {**feature_request(cfg, [model], pooling), "sample": sample, "sample_seed": seed, "purpose": "rank"}
    # One folder per request: candidates, data and samples never overwrite each other's features.
    digest = hashlib.sha1(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:10]
    cache = Path(cache) / f"{slug(model)}-{digest}"

    def extract():
        return extract_splits([model], {"train": dataset}, label_names, column=input_column(cfg),
                              label_column=cfg.data.label_column, pooling=pooling,
                              max_seq_length=cfg.data.max_seq_length, revision=cfg.model.revision,
                              trust_remote_code=cfg.model.trust_remote_code, allow_pickle=cfg.model.allow_pickle)  # fmt: skip

    sets, reused = cached_or_extract(cache, request, extract)
    logger.info("%s: features %s", model, "reused from the cache" if reused else f"cached in {cache}")
    return sets["train"].features


def source_probabilities(checkpoint: str, cfg, dataset) -> tuple[np.ndarray | None, str]:
    """(the checkpoint's own class probabilities over the sample, note): None where it has no classifier head."""
    import torch
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(checkpoint)
    text = cfg.run.task == "text_classification"
    suffix = "ForSequenceClassification" if text else "ForImageClassification"
    if not any(a.endswith(suffix) for a in (config.architectures or [])):
        return None, f"n/a: no classifier head ({', '.join(config.architectures or ['no architectures'])})"
    auto = AutoModelForSequenceClassification if text else AutoModelForImageClassification
    model = auto.from_pretrained(checkpoint).eval()
    reader = AutoTokenizer.from_pretrained(checkpoint) if text else AutoImageProcessor.from_pretrained(checkpoint)
    values, out = list(dataset[input_column(cfg)]), []
    with torch.inference_mode():
        for start in range(0, len(values), 64):
            batch = values[start : start + 64]
            if text:
                inputs = reader(batch, padding=True, truncation=True, max_length=cfg.data.max_seq_length,
                                return_tensors="pt")  # fmt: skip
            else:
                inputs = reader(images=[to_rgb(i) for i in batch], return_tensors="pt")
            out.append(torch.softmax(model(**inputs).logits.float(), -1).numpy())
    return np.concatenate(out), f"its own head: {model.config.num_labels} source classes"


def measure_candidate(cfg, model: str, dataset, labels, label_names, per_class, cache: Path, *, pooling: str,
                      sample: int, seed: int) -> Candidate:  # fmt: skip
    from threadpoolctl import threadpool_limits
    from transformers import AutoConfig

    started = time.perf_counter()
    checkpoint = resolve_checkpoint(model)
    features = candidate_features(cfg, model, dataset, label_names, cache, pooling, sample, seed)
    with threadpool_limits(limits=1):  # small BLAS problems: threads only contend (see advisor.measure)
        m = Measurements(
            examples_per_class=per_class, sample_size=len(labels), chance_accuracy=chance_accuracy(labels),
            probe_accuracy=linear_probe_accuracy(features, labels, seed), knn_accuracy=knn_accuracy(features, labels, seed),
            logme=logme(features, labels), logme_shuffled=logme(features, np.random.default_rng(seed).permutation(labels)),
            num_blocks=int(getattr(AutoConfig.from_pretrained(checkpoint), "num_hidden_layers", 0) or 0),
        )  # fmt: skip
    probabilities, note = source_probabilities(checkpoint, cfg, dataset)
    value = None if probabilities is None else leep(probabilities, labels)
    return Candidate(model, m, value, note, time.perf_counter() - started)


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: the cross-validated probe, then LogME, then the name (a fixed order for fixed inputs)."""
    ordered = sorted(candidates, key=lambda c: (-round(c.measurements.probe_accuracy, 6), -c.measurements.logme,
                                                c.model))  # fmt: skip
    for position, candidate in enumerate(ordered, start=1):
        candidate.rank = position
        candidate.reasons = candidate_reasons(candidate, ordered)
    return ordered


def candidate_reasons(c: Candidate, ordered: list[Candidate]) -> list[str]:
    m, best = c.measurements, ordered[0].measurements
    reasons = [
        f"probe {m.probe_accuracy:.3f} (chance {m.chance_accuracy:.3f}, gain {m.probe_gain:.0%} of the gap to 100%), "
        f"kNN {m.knn_accuracy:.3f}, LogME {m.logme:.3f} ({m.logme - m.logme_shuffled:+.3f} over shuffled labels), "
        f"LEEP {'n/a' if c.leep is None else format(c.leep, '.3f')}"
    ]
    if c.rank > 1:
        gap = best.probe_accuracy - m.probe_accuracy
        tie = " (within the probe's noise: a tie, LogME decides)" if gap < TIE_POINTS else ""
        reasons.append(f"{100 * gap:.1f} points behind {ordered[0].model} by the probe{tie}")
    for name in ("knn", "logme", "leep"):
        values = [(x.measure(name), x.model) for x in ordered if x.measure(name) is not None]
        if len(values) > 1 and c.measure(name) is not None and max(values)[1] == c.model and c.rank > 1:
            reasons.append(f"best by {name} although not by the probe: the measures disagree here")
    return reasons


def markdown_table(ordered: list[Candidate]) -> str:
    lines = [
        "| rank | checkpoint | blocks | probe | kNN | LogME | LEEP | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in ordered:
        m = c.measurements
        leep_cell = "n/a" if c.leep is None else f"{c.leep:.3f}"
        lines.append(f"| {c.rank} | {c.model} | {m.num_blocks} | {m.probe_accuracy:.3f} | {m.knn_accuracy:.3f} | "
                     f"{m.logme:.3f} | {leep_cell} | {c.seconds:.0f} |")  # fmt: skip
    return "\n".join(lines)


@dataclass
class Ranking:
    candidates: list[Candidate]  # best first
    recommendation: object  # advisor.Recommendation for the best candidate
    recipe: dict  # the recommended recipe's values


def rank_checkpoints(values: dict, models: list[str], *, cache: Path, base_name: str | None = None,
                     sample: int = 1000, seed: int = 0, pooling: str = "cls") -> Ranking:  # fmt: skip
    """Measure every candidate on one sample of the data, rank them, advise a strategy for the best one."""
    check_candidates(models, values.get("task") or "text_classification")
    cfg, dataset, labels, label_names, per_class = sample_data(values, sample, seed)
    candidates = []
    for i, model in enumerate(models):
        logger.info("[%d/%d] measuring %s on %d examples", i + 1, len(models), model, len(labels))
        candidates.append(measure_candidate(cfg, model, dataset, labels, label_names, per_class,
                                            Path(cache), pooling=pooling, sample=sample,
                                            seed=seed))  # fmt: skip
    ordered = rank(candidates)
    best = ordered[0]
    recommendation = recommend(best.measurements, base_learning_rate=finetuning_rate(values))
    recommendation.reasons[:0] = [f"checkpoint {best.model}: ranked first of {len(ordered)} by the cross-validated "
                                  "linear probe on frozen features (table in the .json beside this recipe)"]  # fmt: skip
    recipe = recipe_values({**values, "model_name_or_path": best.model}, recommendation, base_name)
    return Ranking(ordered, recommendation, recipe)
