"""Classical classifiers on cached frozen features: scikit-learn pipelines, k-fold estimates, a saved model.

Each head is a `sklearn.pipeline.Pipeline`: standardisation in front of the heads whose
result depends on feature scale (logistic regression and SVMs through their penalty, kNN
through its distances); Gaussian naive Bayes models each feature's own mean and variance and
needs none. On the train split a stratified k-fold cross-validation gives the mean and std of
accuracy and macro F1 (an honest estimate on small data, rather than one lucky split); an
optional grid search picks C by the same folds. The final pipeline is fitted on the whole
train split and scored on validation and test, the splits the Trainer strategies are scored on.

The fitted pipeline is saved with skops (`model.skops`), which loads scikit-learn and numpy
types without unpickling arbitrary objects; a file that names any other type is refused unless
the user states trust (`--trust-model`), as pickle weights need `--allow_pickle`. The folder
records the backbone(s) and pooling, so `hf-finetune predict` computes features for new raw
inputs on the fly.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from hf_finetune.analysis.features import FeatureSet, extract_features, load_features
from hf_finetune.data.splits import stratified_folds
from hf_finetune.errors import UserError, first_line
from hf_finetune.evaluation.metrics import classification_scores, majority_baseline, per_class_report, softmax
from hf_finetune.modeling.backbone import load_backbone
from hf_finetune.outputs import check_output_dir, check_writable, mark_complete, prepare_output_dir, write_json

logger = logging.getLogger("hf_finetune")

MODEL_FILE = "model.skops"
CLASSICAL_JSON = "classical.json"
REPORT_MD = "report.md"
# Small C (strong L2) suits hundreds of standardised, correlated embedding dimensions (logreg chose 0.01 on
# fortunes); LinearSVC at C 100 took minutes to converge there.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
HEADS = {
    "logreg": "standardise + logistic regression (multinomial, L2, C=1)",
    "linear_svm": "standardise + linear SVM (LinearSVC, C=1)",
    "svm_rbf": "standardise + RBF-kernel SVM (SVC, C=1, gamma=scale)",
    "naive_bayes": "Gaussian naive Bayes (no scaling: it models each feature's own variance)",
    "knn": "standardise + 5 nearest neighbours (distance-weighted)",
}
C_HEADS = ("logreg", "linear_svm", "svm_rbf")
# `features_svm` in `hf-finetune compare`: the linear SVM of the classic frozen-features papers (DeCAF, CNN features
# off-the-shelf); the kernel SVM is `svm_rbf`.
ALIASES = {"svm": "linear_svm", "nb": "naive_bayes", "lr": "logreg"}


def head_name(name: str) -> str:
    """The head a name means (aliases resolved); an unknown name is an error listing the heads."""
    name = ALIASES.get(name, name)
    if name not in HEADS:
        raise UserError(f"unknown head '{name}'; heads: {', '.join(HEADS)} (aliases: {', '.join(ALIASES)})")
    return name


def build_pipeline(head: str, seed: int = 42, C: float = 1.0):
    """The scikit-learn pipeline of a head, scaler first where the head is scale-sensitive."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    head = head_name(head)
    classifier = {
        # lbfgs converges within 2,000 iterations on a few thousand standardised 384-768-d rows.
        "logreg": lambda: LogisticRegression(C=C, max_iter=2000, random_state=seed),
        "linear_svm": lambda: LinearSVC(C=C, max_iter=10000, random_state=seed),
        "svm_rbf": lambda: SVC(C=C, kernel="rbf", gamma="scale", random_state=seed),
        "naive_bayes": lambda: GaussianNB(),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5, weights="distance"),
    }[head]()
    steps = [] if head == "naive_bayes" else [("scale", StandardScaler())]
    return Pipeline([*steps, ("clf", classifier)])


def head_parameter_count(pipeline) -> int:
    """Fitted numbers the head learned (coefficients, support-vector weights, class statistics); kNN stores
    the training rows instead and counts 0."""
    clf = pipeline.named_steps["clf"]
    names = ("coef_", "intercept_", "dual_coef_", "theta_", "var_", "class_prior_")
    return int(sum(np.size(getattr(clf, n)) for n in names if hasattr(clf, n)))


def cross_validate_head(pipeline, train: FeatureSet, cv: int, seed: int, grid_c: bool) -> tuple[object, dict]:
    """(pipeline with the chosen C, CV summary): mean/std of accuracy and macro F1 over stratified folds."""
    from sklearn.model_selection import GridSearchCV, cross_validate

    scoring = {"accuracy": "accuracy", "macro_f1": "f1_macro"}
    folds = stratified_folds(train.labels, cv, seed)
    if grid_c:
        search = GridSearchCV(pipeline, {"clf__C": list(C_GRID)}, scoring=scoring, refit="macro_f1", cv=folds)
        search.fit(train.features, train.labels)
        best = search.best_index_
        results = search.cv_results_
        per_fold = {m: [float(results[f"split{i}_test_{m}"][best]) for i in range(cv)] for m in scoring}
        chosen = {"C": float(search.best_params_["clf__C"]), "grid": list(C_GRID),
                  "note": "CV scores of the chosen C: slightly optimistic (C was chosen on the same folds)"}  # fmt: skip
        pipeline = pipeline.set_params(clf__C=chosen["C"])
    else:
        scores = cross_validate(pipeline, train.features, train.labels, scoring=scoring, cv=folds)
        per_fold = {m: [float(v) for v in scores[f"test_{m}"]] for m in scoring}
        chosen = {}
    summary = {"folds": cv, "seed": seed, "per_fold": per_fold, **chosen}
    for metric, values in per_fold.items():
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
    return pipeline, summary


def block_contributions(head: str, params: dict, sets: dict[str, FeatureSet], split: str, seed: int) -> list[dict]:
    """Each backbone's share when features are concatenated: the same head on each block alone (scores on
    `split`), and for linear heads the share of the squared weight norm that falls on the block."""

    blocks = sets["train"].meta.get("backbones", [])
    if len(blocks) < 2:
        return []
    rows = []
    for block in blocks:
        columns = slice(block["start"], block["end"])
        alone = build_pipeline(head, seed).set_params(**params)
        alone.fit(sets["train"].features[:, columns], sets["train"].labels)
        predicted = alone.predict(sets[split].features[:, columns])
        scores = classification_scores(sets[split].labels, predicted)
        rows.append({"model": block["model"], "dim": block["dim"], "split": split, "alone_accuracy": scores["accuracy"],
                     "alone_macro_f1": scores["macro_f1"]})  # fmt: skip
    return rows


def weight_norm_shares(pipeline, blocks: list[dict]) -> list[float] | None:
    """Share of the squared coefficient norm per block (on standardised features); None for non-linear heads."""
    clf = pipeline.named_steps["clf"]
    coef = getattr(clf, "coef_", None)
    if coef is None or len(blocks) < 2:
        return None
    squared = np.asarray(coef) ** 2
    total = float(squared.sum()) or 1.0
    return [float(squared[:, b["start"] : b["end"]].sum() / total) for b in blocks]


def check_classical_request(head: str, cv: int, grid_c: bool) -> None:
    if cv == 1 or cv < 0:
        raise UserError(f"--cv must be 0 (no cross-validation) or at least 2, got {cv}")
    if grid_c and head not in C_HEADS:
        raise UserError(f"--grid-C searches C, which only {', '.join(C_HEADS)} have; head {head} has none")
    if grid_c and cv < 2:
        raise UserError("--grid-C chooses C by cross-validation: give --cv 2 or more")


def score_splits(pipeline, features: dict) -> tuple[dict, dict]:
    """(scores, per-class report) of the fitted pipeline on the validation and test features there are."""
    train = features["train"]
    metrics, per_class = {}, {}
    for split in ("validation", "test"):
        if split in features:
            predicted = pipeline.predict(features[split].features)
            metrics[split] = classification_scores(features[split].labels, predicted)
            per_class[split] = per_class_report(features[split].labels, predicted, train.label_names)["per_class"]
    return metrics, per_class


def run_classical(
    features, head: str, out: Path, *, cv: int = 5, grid_c: bool = False, seed: int = 42, overwrite: bool = False,
    features_path: str | None = None, extra: dict | None = None,
) -> dict:  # fmt: skip
    """Fit `head` on the train features (after k-fold CV), score validation/test, save pipeline + report in `out`.

    `features` is a features folder or a {split: FeatureSet} dict already in memory (`hf-finetune compare`).
    `extra` adds fields to the report. Returns the report (also in `out/classical.json`, with `markdown`).
    """

    head = head_name(head)
    check_classical_request(head, cv, grid_c)
    out = Path(out)
    check_output_dir(out, overwrite)
    check_writable(out)
    if not isinstance(features, dict):
        features_path = str(Path(features).resolve())
        features = load_features(features)
    if "train" not in features:
        raise UserError(f"the features have no train split (splits: {', '.join(features)})")
    train = features["train"]
    if len(np.unique(train.labels)) < 2:
        raise UserError("the train features hold one class only; a classifier needs at least two")

    pipeline, cv_summary, fit_seconds = fit_head(head, train, cv, seed, grid_c)
    metrics, per_class = score_splits(pipeline, features)
    report_split = "test" if "test" in metrics else "validation"
    params = {"clf__C": pipeline.get_params()["clf__C"]} if head in C_HEADS else {}
    contributions = block_contributions(head, params, features, report_split, seed) if report_split in features else []
    shares = weight_norm_shares(pipeline, train.meta.get("backbones", []))
    for row, share in zip(contributions, shares or [None] * len(contributions), strict=True):
        row["weight_norm_share"] = share
    meta = train.meta
    report = {
        "kind": "classical",
        "head": head,
        "head_description": HEADS[head],
        "params": {k.removeprefix("clf__"): v for k, v in params.items()} if grid_c else {},
        "label_names": train.label_names,
        "backbones": meta.get("backbones", []),
        **{key: meta.get(key) for key in ("pooling", "max_seq_length", "column", "modality")},
        "features": features_path,
        "data_sizes": {split: len(fs.ids) for split, fs in features.items()},
        "feature_dim": int(train.features.shape[1]),
        "cv": cv_summary,
        "metrics": metrics,
        "per_class": per_class,
        "report_split": report_split,
        "majority_baseline": majority_baseline(train.labels, features[report_split].labels) if metrics else None,
        "fit_seconds": round(fit_seconds, 3),
        "extract_seconds": meta.get("extract_seconds", {}),
        "trainable_params": head_parameter_count(pipeline),
        "contributions": contributions,
        **(extra or {}),
    }
    report["markdown"] = format_classical_report(report)
    save_classical(out, pipeline, report, overwrite)
    return report


def fit_head(head: str, train, cv: int, seed: int, grid_c: bool):
    """(fitted pipeline, CV summary or None, fit seconds): k-fold estimate first, then a fit on all of train."""
    pipeline = build_pipeline(head, seed)
    cv_summary = None
    if cv:
        pipeline, cv_summary = cross_validate_head(pipeline, train, cv, seed, grid_c)
    started = time.perf_counter()
    pipeline.fit(train.features, train.labels)
    return pipeline, cv_summary, time.perf_counter() - started


def save_classical(out: Path, pipeline, report: dict, overwrite: bool) -> None:
    """The folder a classical run leaves: the pipeline, its report (JSON and Markdown), the marker last."""
    prepare_output_dir(out, overwrite)
    save_pipeline(pipeline, out / MODEL_FILE)
    write_json(out / CLASSICAL_JSON, {k: v for k, v in report.items() if k != "markdown"})
    (out / REPORT_MD).write_text(report["markdown"] + "\n", encoding="utf-8")
    mark_complete(
        out, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": report["metrics"], "kind": "classical"}
    )


def format_classical_report(report: dict) -> str:
    models = " + ".join(f"{b['model']} ({b['dim']})" for b in report["backbones"]) or "?"
    lines = [
        f"# Classical head `{report['head']}` on frozen features",
        "",
        f"{report['head_description']}; features: {models}, pooling {report['pooling']}, "
        f"{report['feature_dim']} columns; train {report['data_sizes'].get('train')} examples.",
        "",
    ]
    if report["params"]:
        lines += [f"Chosen by grid search: {report['params']}", ""]
    cv = report["cv"]
    if cv:
        lines += [
            f"Stratified {cv['folds']}-fold CV on train (seed {cv['seed']}): accuracy {cv['accuracy_mean']:.4f} "
            f"+/- {cv['accuracy_std']:.4f}, macro F1 {cv['macro_f1_mean']:.4f} +/- {cv['macro_f1_std']:.4f}",
            "",
        ]
    lines += ["| split | accuracy | macro F1 |", "|---|---|---|"]
    lines += [f"| {s} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |" for s, m in report["metrics"].items()]
    if report["majority_baseline"] is not None:
        lines += ["", f"Majority class on {report['report_split']}: accuracy {report['majority_baseline']:.4f}"]
    if report["contributions"]:
        lines += ["", f"Each backbone's contribution ({report['report_split']}):", "",
                  "| backbone | dim | accuracy alone | macro F1 alone | weight-norm share |", "|---|---|---|---|---|"]  # fmt: skip
        for row in report["contributions"]:
            share = f"{row['weight_norm_share']:.2f}" if row["weight_norm_share"] is not None else "n/a"
            lines.append(
                f"| {row['model']} | {row['dim']} | {row['alone_accuracy']:.4f} | {row['alone_macro_f1']:.4f} | {share} |"
            )
        both = report["metrics"][report["report_split"]]
        lines.append(
            f"| concatenated | {report['feature_dim']} | {both['accuracy']:.4f} | {both['macro_f1']:.4f} | 1.00 |"
        )
    return "\n".join(lines)


# --- Saving and loading the fitted pipeline ---


def save_pipeline(pipeline, path: Path) -> None:
    import skops.io as sio

    sio.dump(pipeline, path)


def load_sklearn_pipeline(path: Path, trust: bool = False):
    """The fitted pipeline; a file naming types outside skops' trusted set is refused unless `trust`."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise UserError(f"cannot read {path}: {first_line(exc)}") from None
    if untrusted and not trust:
        raise UserError(
            f"{path} names types outside skops' trusted set ({', '.join(untrusted[:5])}), which could run code when "
            "loaded; pass --trust-model only if you made this file or trust its source"
        )
    return sio.load(path, trusted=untrusted)


def is_classical_folder(folder) -> bool:
    return (Path(folder) / CLASSICAL_JSON).is_file()


def classical_info(folder) -> dict:
    """The folder's classical.json (head, labels, backbones, pooling), or a one-line error."""
    path = Path(folder) / CLASSICAL_JSON
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {first_line(exc)}") from None
    missing = [key for key in ("head", "label_names", "backbones", "pooling") if key not in info]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: not a classical-head folder from `hf-finetune classical`")
    return info


class ClassicalPredictor:
    """A classical model folder ready for raw inputs: its backbone(s) compute features, the pipeline labels them."""

    def __init__(self, folder, trust: bool = False, batch_size: int = 64):

        folder = Path(folder)
        self.info = classical_info(folder)
        self.pipeline = load_sklearn_pipeline(folder / MODEL_FILE, trust=trust)
        self.backbones = [load_backbone(b["model"]) for b in self.info["backbones"]]
        self.batch_size = batch_size

    def features(self, inputs: list) -> np.ndarray:

        info = self.info
        blocks = [
            extract_features(
                b.name,
                inputs,
                column="",
                pooling=info["pooling"],
                batch_size=self.batch_size,
                max_seq_length=info["max_seq_length"] or 128,
                backbone=b,
                progress=len(inputs) >= 64,
            )  # fmt: skip
            for b in self.backbones
        ]
        return np.concatenate(blocks, axis=1)

    def predict(self, inputs: list) -> list[dict]:
        """{label, score}: score is the class probability where the head has one (logreg, naive Bayes, kNN),
        else the softmax of the SVM's decision values (a confidence, not a calibrated probability)."""

        if not inputs:
            return []
        names = self.info["label_names"]
        classes, scores = self.head(self.features(inputs))
        return [
            {"label": names[int(c)], "score": round(float(row.max()), 4)}
            for c, row in zip(classes, scores, strict=True)
        ]

    def head(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class id per row, class scores per row) of the fitted pipeline on features `x`."""
        if hasattr(self.pipeline, "predict_proba"):
            scores = self.pipeline.predict_proba(x)
        else:
            decision = np.asarray(self.pipeline.decision_function(x))
            if decision.ndim == 1:  # binary: one margin
                decision = np.stack([-decision, decision], axis=1)
            scores = softmax(decision)
        return self.pipeline.classes_[scores.argmax(axis=1)], scores
