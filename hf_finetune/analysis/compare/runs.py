"""`hf-finetune compare`: transfer methods side by side on the same splits, one table.

A *method* is either a registered strategy (`full`, `linear_probe`, `lora`, `freeze_bottom+llrd`, ...),
run through `training.run` with the recipe and `strategy:` overridden, or `features_<head>`
(`features_logreg`, `features_svm`, ...): the recipe's checkpoint as a frozen feature
extractor (`hf_finetune.analysis.features`, cached once under `<out>/features/`) with a scikit-learn
head (`hf_finetune.analysis.classical`). Where the recipe folder holds a tuned sibling recipe for a
strategy (`fortunes_topics_linear_probe.yaml` next to `fortunes_topics.yaml`), that recipe is
used, since a linear probe wants another learning rate and schedule than a full fine-tune;
otherwise the strategy's default learning rate replaces the recipe's (unless `--learning_rate`
is given). Command-line overrides apply to every method.

The data is loaded once, with the recipe's seed: every method and seed sees the same train,
validation and test splits. `--fractions` keep a stratified random share of train (drawn with
the run's seed; 1.0 keeps all), `--seeds` repeat each run with another training seed.
`--min_steps` raises the epochs of a small fraction until its run takes that many optimizer
steps: at the recipe's epochs, 5% of the text demo is 8 steps, which leaves every strategy at
chance and says nothing about the strategies. The epochs each run used are in its row.

Each run keeps its outputs in `<out>/<method>/frac-<f>/seed-<s>/` with the usual completion
marker; a finished run is skipped when the command is repeated, so an interrupted comparison
resumes. The result is `compare.json` (`rows`: a flat list of dicts, one per run, schema in
`ROW_KEYS`) and the same rows as a Markdown table in `compare.md` and on stdout.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from hf_finetune.analysis.classical import CLASSICAL_JSON, head_name, run_classical
from hf_finetune.analysis.compare.report import write_report
from hf_finetune.analysis.features import features_for_config, load_config_data
from hf_finetune.data.splits import LabelledData, stratified_subsample
from hf_finetune.errors import UserError
from hf_finetune.outputs import METRICS, is_finished, write_json
from hf_finetune.recipes import load_recipe, parse_config, resolve_recipe_path
from hf_finetune.strategies.plan import resolve_strategies
from hf_finetune.training.run import run

logger = logging.getLogger("hf_finetune")

FEATURES_PREFIX = "features_"
COMPARE_JSON, COMPARE_MD = "compare.json", "compare.md"
# One row per run. accuracy/macro_f1 are on `split` (test when the data has one, else validation).
# train_time_s: Trainer runs, the training loop's wall time; features runs, the head's fit plus the
# feature extraction of the training rows used (extract_time_s, fit_time_s, separately too).
# trainable_params: parameters the optimizer updated; features runs, the numbers the head fitted.
ROW_KEYS = ("method", "kind", "fraction", "seed", "n_train", "epochs", "split", "accuracy", "macro_f1", "train_time_s",
            "trainable_params", "extract_time_s", "fit_time_s", "recipe", "output_dir")  # fmt: skip
DEFAULT_METHODS = "linear_probe,features_logreg,features_svm,full"
DEFAULT_MIN_STEPS = 30


def parse_list(text: str, kind: type, name: str) -> list:
    try:
        values = [kind(v.strip()) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} must be a comma-separated list of {kind.__name__}s, got '{text}'") from None
    if not values:
        raise UserError(f"--{name} is empty")
    if len(set(values)) != len(values):
        raise UserError(f"--{name} names a value twice: {text}")
    return values


def check_methods(methods: list[str]) -> None:
    """Every method is a strategy (or `a+b` composition) or `features_<head>`; typos fail before any work."""

    for method in methods:
        if method.startswith(FEATURES_PREFIX):
            head_name(method[len(FEATURES_PREFIX) :])
        else:
            resolve_strategies([s for s in method.split("+") if s])


def check_fractions(fractions: list[float]) -> None:
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise UserError(f"--fractions are shares of the train split, in (0, 1]; got {bad[0]}")


def subsample(labels, fraction: float, seed: int) -> np.ndarray:
    """Indices of a stratified random `fraction` of the rows (all rows, in order, for 1.0)."""
    labels = np.asarray(labels)
    if fraction >= 1:
        return np.arange(len(labels))
    n = max(int(round(fraction * len(labels))), len(np.unique(labels)))
    try:
        return stratified_subsample(labels, n, seed)
    except ValueError as exc:  # a class with one row cannot be split in two
        raise UserError(f"cannot keep a stratified {fraction:g} of {len(labels)} training rows: {exc}") from None


def epochs_for_min_steps(training, n_train: int, min_steps: int) -> float:
    """The recipe's epochs, or more when `n_train` rows at its batch give fewer than `min_steps`
    optimizer steps (the recipe's `max_steps`, when set, wins as it does in Trainer)."""
    epochs = training.num_train_epochs
    if training.max_steps > 0 or min_steps <= 0:
        return epochs
    batches = math.ceil(n_train / (training.per_device_train_batch_size * training.world_size))
    steps_per_epoch = max(batches // training.gradient_accumulation_steps, 1)
    return float(max(epochs, math.ceil(min_steps / steps_per_epoch)))


def tuned_recipe_path(recipe_path: Path, method: str) -> Path | None:
    """The recipe tuned for `method` beside `recipe_path` (`fortunes_topics_linear_probe.yaml`), if there is one."""
    sibling = recipe_path.with_name(f"{recipe_path.stem}_{method.replace('+', '_')}.yaml")
    return sibling if sibling.is_file() else None


def run_dir(out: Path, method: str, fraction: float, seed: int) -> Path:
    return out / method / f"frac-{fraction:g}" / f"seed-{seed}"


class Comparison:
    """The run matrix of one `compare` command: methods x fractions x seeds on one recipe's splits."""

    def __init__(self, config: str, overrides: list[str], methods: list[str], fractions: list[float],
                 seeds: list[int], out: Path | None, pooling: str = "cls",
                 min_steps: int = DEFAULT_MIN_STEPS):  # fmt: skip

        check_methods(methods)
        check_fractions(fractions)
        self.recipe_path = resolve_recipe_path(config)
        self.recipe_values = load_recipe(self.recipe_path)
        self.overrides = overrides
        self.base = parse_config(["--config", str(self.recipe_path), *overrides], prog="hf-finetune compare")
        if self.base.run.cv_folds:
            raise UserError("compare runs one split per method; remove cv_folds (use --seeds for repeats)")
        self.methods, self.fractions, self.seeds, self.pooling = methods, fractions, seeds, pooling
        self.min_steps = min_steps
        self.out = Path(out or Path("outputs") / f"compare-{self.recipe_path.stem}")
        self._data = None
        self._features = None

    # --- shared inputs, loaded once ---

    @property
    def data(self):
        if self._data is None:
            self._data = load_config_data(self.base)
        return self._data

    def features(self) -> dict:
        """The recipe checkpoint's features of every split, cached in `<out>/features/` (reused on reruns)."""
        if self._features is None:
            model = self.base.model.model_name_or_path
            self._features, _ = features_for_config(
                self.base, [model], self.out / "features", pooling=self.pooling, data=self.data
            )
        return self._features

    # --- one run ---

    def strategy_argv(self, method: str, seed: int, folder: Path) -> tuple[list[str], str]:
        """(train argv, recipe used): the sibling recipe tuned for the strategy when there is one."""

        sibling = tuned_recipe_path(self.recipe_path, method)
        recipe_strategy = self.recipe_values.get("strategy", "full")
        argv = ["--config"]
        if method != recipe_strategy and sibling is not None:
            argv.append(str(sibling))
            recipe = sibling.stem
        else:
            argv.append(str(self.recipe_path))
            recipe = self.recipe_path.stem
            if method != recipe_strategy:  # the recipe's LR was tuned for its own strategy
                names = [s for s in method.split("+") if s]
                lr = next(c.default_learning_rate for c in resolve_strategies(names) if c.default_learning_rate)
                argv += ["--learning_rate", str(lr)]
        # Later flags win: the user's overrides over the recipe, then what this run must be.
        argv += [*self.overrides, "--strategy", method, "--output_dir", str(folder), "--seed", str(seed)]
        return argv, recipe

    def run_strategy(self, method: str, fraction: float, seed: int, folder: Path, indices) -> dict:

        argv, recipe = self.strategy_argv(method, seed, folder)
        cfg = parse_config(argv, prog="hf-finetune compare")
        epochs = epochs_for_min_steps(cfg.training, len(indices), self.min_steps)
        if epochs != cfg.training.num_train_epochs:
            cfg = parse_config([*argv, "--num_train_epochs", f"{epochs:g}"], prog="hf-finetune compare")
        if not is_finished(folder):
            data = self.data
            splits = dict(data.splits)
            splits["train"] = splits["train"].select(indices)
            run(cfg, data=LabelledData(splits, data.label_names, data.source, dict(data.extra_outputs)))
        summary = json.loads((folder / METRICS).read_text(encoding="utf-8"))
        row = scores_row(summary, "strategy", recipe, summary["train_runtime"], summary["parameters"][0])
        return {**row, "epochs": epochs}

    def run_features(self, method: str, fraction: float, seed: int, folder: Path, indices) -> dict:

        head = method[len(FEATURES_PREFIX) :]
        if not is_finished(folder):
            sets = dict(self.features())
            # The cache extracted every train row once; this run is charged for the rows it used.
            extract = sets["train"].meta["extract_seconds"].get("train", 0.0) * len(indices) / len(sets["train"].ids)
            sets["train"] = sets["train"].subset(indices)
            run_classical(sets, head, folder, cv=0, seed=seed, features_path=str(self.out / "features"),
                          extra={"extract_train_seconds": round(extract, 3)})  # fmt: skip
        report = json.loads((folder / CLASSICAL_JSON).read_text(encoding="utf-8"))
        extract, fit = report["extract_train_seconds"], report["fit_seconds"]
        row = scores_row(report, "features", self.recipe_path.stem, extract + fit, report["trainable_params"])
        return {**row, "extract_time_s": round(extract, 2), "fit_time_s": round(fit, 3)}

    # --- the matrix ---

    def run(self) -> list[dict]:

        self.out.mkdir(parents=True, exist_ok=True)
        label_column = self.base.data.label_column
        total = len(self.methods) * len(self.fractions) * len(self.seeds)
        rows, done = [], 0
        for fraction in self.fractions:
            for seed in self.seeds:
                indices = None
                for method in self.methods:
                    done += 1
                    folder = run_dir(self.out, method, fraction, seed)
                    state = "finished, skipped" if is_finished(folder) else "running"
                    logger.info("[%d/%d] %s, fraction %g, seed %d: %s", done, total, method, fraction, seed, state)
                    if indices is None:
                        indices = subsample(self.data.splits["train"][label_column], fraction, seed)
                    runner = self.run_features if method.startswith(FEATURES_PREFIX) else self.run_strategy
                    started = time.time()
                    row = {"method": method, "fraction": fraction, "seed": seed,
                           **runner(method, fraction, seed, folder, indices), "output_dir": str(folder)}  # fmt: skip
                    rows.append({k: row.get(k) for k in ROW_KEYS})
                    logger.info("[%d/%d] %s: accuracy %.4f, macro F1 %.4f (%.0f s)", done, total, method,
                                row["accuracy"], row["macro_f1"], time.time() - started)  # fmt: skip
                    write_json(self.out / COMPARE_JSON, self.result(rows))  # progress survives an interruption
        table = markdown_table(rows)
        (self.out / COMPARE_MD).write_text(table + "\n", encoding="utf-8")
        write_json(self.out / COMPARE_JSON, self.result(rows))
        return rows

    def title(self) -> str:
        """The transfer report's title: the data and checkpoint the runs used (overrides change them), then the recipe."""
        data, model = self.base.data, self.base.model
        name = data.train_file or data.dataset_name  # a train file wins over dataset_name, as in loading
        if not data.train_file and data.dataset_config_name:
            name += f" ({data.dataset_config_name})"
        sizes = ", ".join(f"{split} {len(ds):,}" for split, ds in self.data.splits.items())
        return f"Transfer report: {name} ({sizes}) with {model.model_name_or_path}, recipe {self.recipe_path.stem}"

    def result(self, rows: list[dict]) -> dict:
        return {"recipe": str(self.recipe_path), "overrides": self.overrides, "methods": self.methods,
                "fractions": self.fractions, "seeds": self.seeds, "pooling": self.pooling, "rows": rows}  # fmt: skip

    def write_report(self, rows: list[dict], metric: str = "accuracy", advice: str | None = None) -> Path:
        """The transfer report of these runs (`report.write_report`): report.md, report.html, curves."""
        return write_report(self.out, rows, metric=metric, title=self.title(), advice=advice)


def scores_row(summary: dict, kind: str, recipe: str, train_time: float, trainable: int) -> dict:
    """The row fields read from a finished run's summary (metrics.json or classical.json)."""
    split = summary["report_split"]
    return {"kind": kind, "n_train": summary["data_sizes"]["train"], "split": split,
            "accuracy": summary["metrics"][split]["accuracy"], "macro_f1": summary["metrics"][split]["macro_f1"],
            "train_time_s": round(train_time, 2), "trainable_params": trainable, "extract_time_s": None,
            "fit_time_s": None, "recipe": recipe}  # fmt: skip


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| method | fraction | seed | n train | epochs | accuracy | macro F1 | train time s | trainable params |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['fraction']:g} | {r['seed']} | {r['n_train']} | "
            f"{'' if r['epochs'] is None else format(r['epochs'], 'g')} | {r['accuracy']:.4f} | "
            f"{r['macro_f1']:.4f} | {r['train_time_s']:.1f} | {r['trainable_params']:,} |"
        )
    return "\n".join(lines)
