"""Which strategy to use for a data set: the classic 2x2 transfer advice, decided from measurements.

The advice (Yosinski et al. 2014; the CS231n transfer-learning notes) crosses two questions:

|                       | similar to the source           | dissimilar                             |
|-----------------------|---------------------------------|----------------------------------------|
| little data per class | linear_probe (train the head)   | freeze_bottom (keep general low layers)|
| much data per class   | full, fine-tuning LR (~10x below a from-scratch LR) | full (or scratch when the features are useless) |

Both questions are answered with numbers measured on frozen features (`transferability`), and every
threshold is a named constant below, so the reasons printed to the user quote the measurement and
the line it was compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from hf_finetune.analysis.compare.runs import tuned_recipe_path
from hf_finetune.analysis.features import extract_features, input_column, load_config_data
from hf_finetune.analysis.transferability import (
    chance_accuracy,
    knn_accuracy,
    linear_probe_accuracy,
    logme,
    proxy_a_distance,
)
from hf_finetune.data.files import FILE_FORMATS
from hf_finetune.data.splits import stratified_subsample
from hf_finetune.errors import UserError
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.modeling.loading import resolve_checkpoint
from hf_finetune.recipes import config_from_dict, load_recipe, resolve_recipe_path

# "Little data": fewer than this many training examples in the median class, the few-shot regime.
# The textbook line sits in the hundreds, for big networks trained without a validation split. Here
# every run keeps the best checkpoint on a held-out validation split, with weight decay (and
# augmentation for images), and full fine-tuning did not overfit small sets (`hf-finetune compare`,
# README): on Fashion-MNIST target at 50 per class it scored 0.848 against 0.805 for freeze_bottom and
# 0.721 for the linear probe; on 5% of the text demo, 23 per class with at least 30 steps (`make
# report`), 0.673 against 0.583 (LoRA), 0.544 (freeze_bottom) and 0.341 (linear probe). On 13 digits
# per class the frozen-feature strategies did beat `full` (0.439-0.492 vs 0.428, 40 steps). So the
# line is drawn at 15, between those measured points; move it with your own comparisons.
LITTLE_DATA_PER_CLASS = 15
# "Similar": the cross-validated linear probe on frozen features closes at least this share of the
# gap between chance and perfect accuracy, i.e. the checkpoint already separates the classes.
SIMILAR_PROBE_GAIN = 0.6
# A proxy A-distance this close to 2 means a linear classifier tells the data from the source sample
# almost perfectly: the domains are disjoint. Then "similar" needs a clearly strong probe as well.
DISJOINT_PAD = 1.9
STRONG_PROBE_GAIN = 0.8
# Below this probe gain the frozen features barely beat chance: with much data, random init is as good
# a start (He et al. 2019, "Rethinking ImageNet Pre-training"), so scratch is recommended.
USELESS_PROBE_GAIN = 0.25
# ... and "enough data" for random init means far more than "much data" for fine-tuning. He et al. saw
# scratch catch up only from ~10k training images on COCO; below that it overfits. Measured here, scratch
# never beat full: text demo 0.334 (majority class) vs 0.673-0.878, Fashion-MNIST target 0.815 vs 0.848 at 51
# per class, and on 36 e-mails per class (probe gain 19%) the three scratch runs of the ranking validation all
# fell to the majority class (docs/which_checkpoint.md). Below this median per class, useless features still
# get `full`: the pretrained start is at least as good as a random one.
SCRATCH_MIN_PER_CLASS = 1000
# "Much data, similar" below this median per class: LP-FT (fit the head by the convex probe, then fine-tune
# everything) instead of full. Measured (docs/linear_probe.md, same rate and steps as full): 50 Fashion-MNIST
# target images per class, 0.836 +/- 0.005 against 0.819 +/- 0.014 (3 seeds, LP-FT ahead on each); 25 fortunes
# per class, 0.779 +/- 0.015 against 0.709 +/- 0.035 (3 seeds, ahead on each). At 500 images per class LP-FT was not better
# (-1.4 points, ahead on 1 of 3 seeds), so the line sits just above the measured small sets.
LP_FT_MAX_PER_CLASS = 60
# Learning rates when the base recipe gives none (the strategies' own defaults agree).
HEAD_LEARNING_RATE = 1e-3  # a new head on frozen features needs large steps
FINETUNE_LEARNING_RATE = 2e-5  # BERT's fine-tuning rate, ~10x below from-scratch rates
SCRATCH_LR_FACTOR = 10  # from-scratch training runs ~10x the fine-tuning rate


@dataclass
class Measurements:
    """What `hf-finetune advise` measured: data size per class and how the frozen features fare."""

    examples_per_class: dict[str, int]  # in the whole training split, not just the sample
    sample_size: int  # examples the feature measures used
    chance_accuracy: float  # majority class share in the sample
    probe_accuracy: float  # cross-validated logistic regression on frozen features
    knn_accuracy: float
    logme: float
    logme_shuffled: float  # LogME of the same features with permuted labels: the no-information level
    pad: float | None = None  # proxy A-distance to the source reference sample, when one was given
    num_blocks: int = 0  # transformer blocks of the checkpoint (for freeze_bottom's k)

    @property
    def median_per_class(self) -> float:
        counts = sorted(self.examples_per_class.values())
        mid = len(counts) // 2
        return float(counts[mid]) if len(counts) % 2 else (counts[mid - 1] + counts[mid]) / 2

    @property
    def probe_gain(self) -> float:
        """Share of the gap between chance and 100% the linear probe closes (0 = chance, 1 = perfect)."""
        return (self.probe_accuracy - self.chance_accuracy) / max(1e-9, 1 - self.chance_accuracy)


@dataclass
class Recommendation:
    quadrant: str  # e.g. "little data, similar domain"
    strategy: str
    hyperparameters: dict = field(default_factory=dict)  # recipe keys the advice sets
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def is_little_data(m: Measurements) -> tuple[bool, str]:
    little = m.median_per_class < LITTLE_DATA_PER_CLASS
    smallest = min(m.examples_per_class.values())
    return little, (
        f"{'little' if little else 'much'} data: median {m.median_per_class:.0f} training examples per class "
        f"(smallest class {smallest}) {'<' if little else '>='} {LITTLE_DATA_PER_CLASS}"
    )


def is_similar(m: Measurements) -> tuple[bool, list[str]]:
    gain = m.probe_gain
    reasons = [
        f"frozen features: cross-validated linear probe {m.probe_accuracy:.3f}, kNN {m.knn_accuracy:.3f}, "
        f"chance {m.chance_accuracy:.3f} (n={m.sample_size}); the probe closes {gain:.1%} of the gap to 100% "
        f"({'>=' if gain >= SIMILAR_PROBE_GAIN else '<'} {SIMILAR_PROBE_GAIN:.0%} for 'similar')",
        f"LogME {m.logme:.3f} against {m.logme_shuffled:.3f} with shuffled labels "
        f"({'the features carry label information' if m.logme > m.logme_shuffled else 'no more than noise'})",
    ]
    similar = gain >= SIMILAR_PROBE_GAIN and m.logme > m.logme_shuffled
    if m.pad is not None:
        disjoint = m.pad >= DISJOINT_PAD
        reasons.append(
            f"proxy A-distance to the source reference {m.pad:.2f} (0 = same domain, 2 = disjoint; "
            f"{'>=' if disjoint else '<'} {DISJOINT_PAD})"
        )
        if disjoint and similar and gain < STRONG_PROBE_GAIN:
            similar = False
            reasons.append(
                f"disjoint domains and a probe below {STRONG_PROBE_GAIN:.0%} of the gap: counted as dissimilar"
            )
    return similar, reasons


def recommend(m: Measurements, base_learning_rate: float | None = None) -> Recommendation:
    """The quadrant, the strategy with its hyper-parameters, and the reasons quoting `m`.

    `base_learning_rate` is the fine-tuning rate of the recipe the advice starts from (its
    `learning_rate`), if it has one; the recommendation scales from it.
    """
    little, data_reason = is_little_data(m)
    similar, similarity_reasons = is_similar(m)
    finetune_lr = base_learning_rate or FINETUNE_LEARNING_RATE
    quadrant = f"{'little' if little else 'much'} data, {'similar' if similar else 'dissimilar'} domain"
    reasons = [data_reason, *similarity_reasons]
    if little and similar:
        strategy, params = "linear_probe", {"learning_rate": HEAD_LEARNING_RATE}
        reasons.append(
            "the frozen features already separate the classes and there is too little data to move millions "
            "of weights safely: train only the new head"
        )
    elif little:
        k = max(0, m.num_blocks // 2)
        strategy, params = "freeze_bottom", {"freeze_num_layers": k, "learning_rate": finetune_lr}
        reasons.append(
            f"the top blocks' features do not fit this data, but there is too little to retrain everything: "
            f"freeze the embeddings and the lower {k} of {m.num_blocks} blocks (the most general features), "
            "retrain the rest"
        )
    elif similar:
        strategy, params = "full", {"learning_rate": finetune_lr}
        reasons.append(
            f"enough data to adapt every layer and features that are already close: full fine-tuning at a "
            f"fine-tuning rate ({finetune_lr:g}, ~10x below a from-scratch rate) so the start is not destroyed"
        )
        strategy = lp_ft_instead(m, reasons) or strategy
    elif m.probe_gain < USELESS_PROBE_GAIN and m.median_per_class >= SCRATCH_MIN_PER_CLASS:
        strategy, params = "scratch", {"learning_rate": finetune_lr * SCRATCH_LR_FACTOR}
        reasons.append(
            f"the frozen features barely beat chance (probe gain {m.probe_gain:.0%} < {USELESS_PROBE_GAIN:.0%}) "
            f"and there is enough data to learn from random init at a from-scratch rate ({finetune_lr * SCRATCH_LR_FACTOR:g})"
        )
    else:
        strategy, params = "full", {"learning_rate": finetune_lr}
        reasons.append(
            "enough data to retrain every layer on a different domain; the pretrained weights are still a start "
            "at least as good as random ones, so full fine-tuning rather than scratch" + scratch_floor_reason(m)
        )
    return Recommendation(quadrant=quadrant, strategy=strategy, hyperparameters=params, reasons=reasons)


def scratch_floor_reason(m: Measurements) -> str:
    """Why useless features did not lead to `scratch`: too little data to learn from random init."""
    if m.probe_gain >= USELESS_PROBE_GAIN:
        return ""
    return (
        f" (the features barely beat chance, probe gain {m.probe_gain:.0%}, but median {m.median_per_class:.0f} per "
        f"class < {SCRATCH_MIN_PER_CLASS} is too little to learn from random init)"
    )


def lp_ft_instead(m: Measurements, reasons: list[str]) -> str | None:
    """`lp_ft` where full fine-tuning is advised on a smallish set, the range where LP-FT measured better."""
    if m.median_per_class >= LP_FT_MAX_PER_CLASS:
        return None
    reasons.append(
        f"median {m.median_per_class:.0f} per class < {LP_FT_MAX_PER_CLASS}: start phase 2 from a fitted head "
        "(lp_ft: the convex linear probe, then every weight at the same rate), which beat full by 1.7 (vision, "
        "3 seeds) and 7.0 (text, 3 seeds) points at 50 and 25 per class"
    )
    return "lp_ft"


# Keys a strategy's tuned recipe may set on top of the base recipe: its rate, length and own options.
TUNED_KEYS = ("learning_rate", "num_train_epochs", "weight_decay", "warmup_ratio")
STRATEGY_PREFIXES = ("freeze_", "lora_", "llrd_", "l2sp_", "gradual_unfreeze_", "ia3_")


def tuned_recipe(base_name: str | None, strategy: str) -> tuple[str, dict] | None:
    """The recipe `<base>_<strategy>` beside the base one (e.g. `fortunes_topics_linear_probe`), if any:
    the one `hf-finetune compare` runs for that strategy.

    Those recipes hold hyper-parameters measured for that strategy on that data (MiniLM's linear
    probe needs LR 2e-2, where 1e-3 reaches only 0.361), which beat any generic rule.
    """

    path = tuned_recipe_path(resolve_recipe_path(base_name), strategy) if base_name else None
    return (path.stem, load_recipe(path)) if path is not None else None


def recipe_values(base: dict, recommendation: Recommendation, base_name: str | None = None) -> dict:
    """The base recipe with the recommended strategy and hyper-parameters (a fresh output folder).

    When a tuned recipe for the strategy ships beside the base one, its rate, epochs and strategy
    options replace the generic ones, and a reason says so.
    """
    values = {k: v for k, v in base.items() if k not in ("output_dir", "strategy")}
    values["strategy"] = recommendation.strategy
    values.update(recommendation.hyperparameters)
    tuned = tuned_recipe(base_name, recommendation.strategy)
    if tuned is not None:
        name, recipe = tuned
        taken = {k: v for k, v in recipe.items() if k in TUNED_KEYS or k.startswith(STRATEGY_PREFIXES)}
        values.update(taken)
        recommendation.hyperparameters.update(taken)
        recommendation.reasons.append(
            f"hyper-parameters from the tuned recipe {name}: " + ", ".join(f"{k} {v}" for k, v in taken.items())
        )
    return values


def write_recipe(path: Path, values: dict, recommendation: Recommendation, command: str = "advise") -> None:
    """A flat recipe whose header comments say why, runnable with `hf-finetune train --config path`.

    The values are validated as a run configuration first, so a recipe that would not run is never written.
    """

    config_from_dict(dict(values), recipe=str(path))
    header = [
        f"# Recommended by `hf-finetune {command}`: {recommendation.quadrant} -> {recommendation.strategy}.",
        *(f"#   - {reason}" for reason in recommendation.reasons),
        f"#   hf-finetune train --config {path}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(header) + "\n" + yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


# --- Measuring: a sample of the data through the frozen checkpoint ---

# Examples the feature measures use: enough for a 5-fold probe with tens of examples per fold and
# class, few enough that MiniLM encodes them in ~10 s on 2 cores.
DEFAULT_SAMPLE = 1000


@dataclass
class Advice:
    measurements: Measurements
    recommendation: Recommendation
    recipe: dict  # the recommended recipe's values
    seconds: dict  # where the time went


def data_values(data: str) -> dict:
    """`--data` as recipe keys: a data file is `train_file`, anything else a `dataset_name`."""

    is_file = Path(data).suffix in FILE_FORMATS or Path(data).is_file()
    return {"train_file": data, "dataset_name": None} if is_file else {"dataset_name": data, "train_file": None}


def _load_train(values: dict):
    """The recipe's config and training split as `hf-finetune train` would see them (validation held out,
    max_train_samples applied)."""

    cfg = config_from_dict(dict(values))
    return cfg, load_config_data(cfg)


def training_sample(values: dict, sample: int, seed: int):
    """(cfg, data, sampled rows, train labels, examples per class): the recipe's training split as `hf-finetune
    train` sees it, checked for two examples of every class, and its stratified measurement sample."""
    cfg, data = _load_train(values)
    labels = np.asarray(data.splits["train"][cfg.data.label_column])
    counts = np.bincount(labels, minlength=len(data.label_names))
    if counts.min() < 2:
        empty = [name for name, c in zip(data.label_names, counts, strict=True) if c < 2]
        raise UserError(f"class(es) {', '.join(empty)} have fewer than 2 training examples: nothing to measure")
    return cfg, data, stratified_subsample(labels, sample, seed), labels, counts


def measure(
    values: dict,
    *,
    sample: int = DEFAULT_SAMPLE,
    reference: str | None = None,
    pooling: str = "cls",
    seed: int = 0,
    progress: bool = True,
) -> tuple[Measurements, dict]:
    """Measurements of the recipe `values`' data through its frozen checkpoint, and seconds per stage."""
    import time

    from threadpoolctl import threadpool_limits
    from transformers import AutoConfig

    seconds, start = {}, time.perf_counter()
    cfg, data, chosen, labels, counts = training_sample(values, sample, seed)
    train = data.splits["train"]
    seconds["load data"] = time.perf_counter() - start

    start = time.perf_counter()
    checkpoint = resolve_checkpoint(cfg.model.model_name_or_path)
    backbone = load_backbone(checkpoint, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
                             allow_pickle=cfg.model.allow_pickle)  # fmt: skip
    features = _features(backbone, train.select(chosen), input_column(cfg), cfg, pooling, progress)
    reference_features = None
    if reference is not None:
        ref_values = {**values, **data_values(reference), "max_train_samples": None}
        ref_cfg, ref_data = _load_train(ref_values)
        ref_train = ref_data.splits["train"]
        ref_rows = np.random.default_rng(seed).permutation(len(ref_train))[: len(chosen)]
        reference_features = _features(backbone, ref_train.select(np.sort(ref_rows)), input_column(ref_cfg),
                                       ref_cfg, pooling, progress)  # fmt: skip
    seconds["features"] = time.perf_counter() - start

    start = time.perf_counter()
    with threadpool_limits(limits=1):  # small BLAS problems: threads only contend (LogME 4 s -> 0.03 s when busy)
        m = _measures(features, labels[chosen], reference_features, data.label_names, counts, seed)
    m.num_blocks = int(getattr(AutoConfig.from_pretrained(checkpoint), "num_hidden_layers", 0) or 0)
    seconds["measures"] = time.perf_counter() - start
    return m, seconds


def _measures(features, y, reference_features, label_names, counts, seed: int) -> Measurements:

    return Measurements(
        examples_per_class={name: int(c) for name, c in zip(label_names, counts, strict=True)},
        sample_size=len(y),
        chance_accuracy=chance_accuracy(y),
        probe_accuracy=linear_probe_accuracy(features, y, seed),
        knn_accuracy=knn_accuracy(features, y, seed),
        logme=logme(features, y),
        logme_shuffled=logme(features, np.random.default_rng(seed).permutation(y)),
        pad=None if reference_features is None else proxy_a_distance(features, reference_features, seed),
    )


def _features(backbone, dataset, column: str, cfg, pooling: str, progress: bool) -> np.ndarray:
    return extract_features(backbone.name, dataset, column=column, pooling=pooling, backbone=backbone,
                            max_seq_length=cfg.data.max_seq_length, progress=progress)  # fmt: skip


def finetuning_rate(values: dict) -> float | None:
    """The base recipe's learning rate when it is a fine-tuning rate (not a head-only, adapter or scratch one)."""
    strategies = values.get("strategy") or "full"
    names = set(strategies if isinstance(strategies, list) else str(strategies).split("+"))
    return None if names & {"linear_probe", "scratch", "lora", "ia3"} else values.get("learning_rate")


def advise(values: dict, base_name: str | None = None, **measure_options) -> Advice:
    """Measure, decide, and build the recommended recipe's values (not written yet)."""
    m, seconds = measure(values, **measure_options)
    recommendation = recommend(m, base_learning_rate=finetuning_rate(values))
    return Advice(m, recommendation, recipe_values(values, recommendation, base_name), seconds)
