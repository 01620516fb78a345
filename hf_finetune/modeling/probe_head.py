"""The convex linear probe: fit a classifier head in closed-form-like fashion, then write it into the model.

Training one linear layer on frozen features is a convex problem. Solved with SGD at a deep
fine-tune's learning-rate schedule it stalls on small data (issue 28: 72 e-mails, the SGD probe
scored the majority rate, 0.697, where scikit-learn's logistic regression on the same features
scored 0.880). Here the head is fitted the way a statistician would fit it: L-BFGS logistic
regression (multinomial, L2) on standardised features, its strength C chosen by stratified k-fold
cross-validation on the training split, then refitted on all of it.

Which features: exactly the input of the model's own final linear layer, captured by a forward
pre-hook while the model runs its own forward in eval mode. So the probe needs no per-family
knowledge: for BERT it is the pooler's output (tanh(dense([CLS]))) after dropout (identity in
eval), for ViT the layer-normed class token, for RoBERTa the output of its (new) dense layer.
Standardisation is folded into the weights (W' = W / s, b' = b - W' mu), and a binary fit's one
margin w becomes logits (-w/2, +w/2), so the model's forward reproduces scikit-learn's
`decision_function` and `predict_proba` (tested) and the result is an ordinary model folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from hf_finetune.data.splits import LabelledData
from hf_finetune.errors import UserError
from hf_finetune.modeling.layers import HEAD
from hf_finetune.settings.arguments import parse_class_weights

logger = logging.getLogger("hf_finetune")

# C (inverse L2 strength on standardised features). The classical heads' grid (`classical.C_GRID`) plus 100:
# with tens of rows per class the best C on MiniLM's pooler features sat at 0.01-1, but a few thousand
# well-separated rows can want a weaker penalty.
PROBE_C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
# lbfgs on a few thousand standardised 128-768-d rows converges well within this (classical.py uses 2,000).
MAX_ITERATIONS = 5000
SCORING = {"accuracy": "accuracy", "log_loss": "neg_log_loss"}
# Tasks whose head is one softmax over classes: what a multinomial logistic regression fits.
PROBE_TASKS = ("text_classification", "image_classification")


@dataclass
class ProbeFit:
    """A fitted probe: the head's weight and bias (standardisation folded in), and how C was chosen."""

    weight: np.ndarray  # (num_labels, d) float32
    bias: np.ndarray  # (num_labels,) float32
    C: float
    cv_log_loss: float | None  # mean over folds at the chosen C; None when too few rows for CV
    folds: int
    pipeline: object = field(repr=False, default=None)
    cv_accuracy: float | None = None
    train_accuracy: float | None = None
    rows: int = 0  # the scikit-learn pipeline (scaler + logistic regression)

    def summary(self) -> dict:
        return {"solver": "lbfgs", "C": self.C, "C_grid": list(PROBE_C_GRID), "cv_folds": self.folds,
                "cv_log_loss": self.cv_log_loss, "cv_accuracy": self.cv_accuracy, "train_accuracy": self.train_accuracy,
                "rows": self.rows, "dim": int(self.weight.shape[1])}  # fmt: skip

    def to_json(self) -> str:
        """`linear_probe.json` in the output folder: how the head was fitted."""
        return json.dumps(self.summary(), indent=1) + "\n"


def check_probe_task(cfg) -> None:
    if cfg.run.task not in PROBE_TASKS or cfg.data.multi_label:
        raise UserError(
            f"the L-BFGS probe fits one softmax over classes (single-label {' or '.join(PROBE_TASKS)}); "
            f"task {cfg.run.task}{' (multi_label)' if cfg.data.multi_label else ''} needs linear_probe_solver sgd"
        )


def classifier_linear(model: nn.Module, layout) -> nn.Linear:
    """The layer that writes the logits: the last `nn.Linear` of the head with one output per label."""
    head = {id(p) for _, p in layout.params[HEAD]}
    num_labels = model.config.num_labels
    found = [
        m for m in model.modules()
        if isinstance(m, nn.Linear) and m.out_features == num_labels and all(id(p) in head for p in m.parameters())
    ]  # fmt: skip
    if not found or found[-1].bias is None:
        raise UserError(
            f"{type(model).__name__} has no linear output layer with a bias and {num_labels} outputs in its head: "
            "the L-BFGS probe cannot write into it; use linear_probe_solver sgd"
        )
    return found[-1]


def head_inputs(model: nn.Module, linear: nn.Linear, dataset, collator, batch_size: int = 64,
                device=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(features, labels): what `linear` receives when the model runs its own forward in eval mode."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    captured: list = []
    hook = linear.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().float().cpu()))
    was_training = model.training
    model.eval()
    labels = []
    device = device or next(model.parameters()).device
    try:
        with torch.inference_mode():
            loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
            for batch in tqdm(loader, desc="Probe features", disable=len(loader) < 4):
                labels.append(batch.pop("labels"))
                model(**{k: v.to(device) for k, v in batch.items()})
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(captured).numpy(), torch.cat(labels).numpy().astype(np.int64)


def fit_probe(features: np.ndarray, labels: np.ndarray, num_labels: int, *, folds: int = 5, seed: int = 42,
              class_weight=None) -> ProbeFit:  # fmt: skip
    """L-BFGS logistic regression on standardised features, C by stratified k-fold CV (accuracy, then log loss), refitted on all."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    counts = np.bincount(labels)
    if np.count_nonzero(counts) < 2:
        raise UserError("the training split holds one class only; a probe needs at least two")
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(
        max_iter=MAX_ITERATIONS, random_state=seed, class_weight=class_weight))])  # fmt: skip
    k = min(folds, int(counts[counts > 0].min()))
    cv_loss = cv_accuracy = None
    # Small BLAS problems: threads only contend on a shared machine.
    with threadpool_limits(limits=1):
        if k >= 2:
            search = GridSearchCV(pipeline, {"clf__C": list(PROBE_C_GRID)}, scoring=SCORING, refit=best_c,
                                  cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed))  # fmt: skip
            search.fit(features, labels)
            pipeline, results = search.best_estimator_, search.cv_results_
            cv_accuracy = float(results["mean_test_accuracy"][search.best_index_])
            cv_loss = float(-results["mean_test_log_loss"][search.best_index_])
        else:  # a class with one row: no fold can hold it out; the usual C=1
            pipeline.fit(features, labels)
    weight, bias = head_weights(pipeline, num_labels)
    return ProbeFit(weight, bias, float(pipeline.named_steps["clf"].C), cv_loss, k if k >= 2 else 0, pipeline,
                    cv_accuracy=cv_accuracy)  # fmt: skip


def best_c(results: dict) -> int:
    """The C with the best mean CV accuracy (the metric users read); among ties, the lowest log loss.

    Measured on the e-mail-style set (65 rows, 3 seeds): choosing by log loss alone favoured strong
    penalties and scored 1.5 points below choosing by accuracy (0.762 vs 0.777 on MiniLM's pooler output)."""
    accuracy, log_loss = results["mean_test_accuracy"], results["mean_test_log_loss"]
    tied = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    return int(tied[np.argmax(log_loss[tied])])


def head_weights(pipeline, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of a linear layer whose logits equal the pipeline's decision function on raw features."""
    scaler, clf = pipeline.named_steps["scale"], pipeline.named_steps["clf"]
    coef = clf.coef_ / scaler.scale_  # (k, d): standardisation folded in
    intercept = clf.intercept_ - coef @ scaler.mean_
    if len(clf.classes_) == 2:  # one margin for the second class: softmax(-m/2, m/2) = sigmoid(m)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    weight = np.zeros((num_labels, coef.shape[1]), dtype=np.float64)
    # A class absent from the training rows can never be predicted: far below every fitted class.
    bias = np.full(num_labels, float(intercept.min()) - 30.0)
    weight[clf.classes_], bias[clf.classes_] = coef, intercept
    return weight.astype(np.float32), bias.astype(np.float32)


def write_head(linear: nn.Linear, fit: ProbeFit) -> None:
    import torch

    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(fit.weight))
        linear.bias.copy_(torch.from_numpy(fit.bias))


def probe_split(task, data: LabelledData, processor):
    """The training split encoded as for evaluation (no augmentation: the probe sees what prediction sees)."""
    return task.encode(LabelledData({"probe": data.splits["train"]}, data.label_names, data.source), processor)["probe"]


def fit_convex_head(model, layout, task, data: LabelledData, processor, cfg, folds: int) -> ProbeFit:
    """Run the frozen model over the training split, fit the probe, write it into the head; logs what it did."""
    check_probe_task(cfg)
    started = time.perf_counter()
    linear = classifier_linear(model, layout)
    batch = cfg.training.per_device_eval_batch_size
    x, y = head_inputs(model, linear, probe_split(task, data, processor), task.data_collator(processor), batch)
    weights = parse_class_weights(cfg.data.class_weights)  # the loss's class weights, in the probe's loss too
    weights = dict(enumerate(weights)) if isinstance(weights, list) else {"none": None, "auto": "balanced"}[weights]
    fit = fit_probe(x, y, model.config.num_labels, folds=folds, seed=cfg.training.seed, class_weight=weights)
    write_head(linear, fit)
    fit.train_accuracy, fit.rows = float((fit.pipeline.predict(x) == y).mean()), len(y)
    loss = "" if fit.cv_log_loss is None else (f", {fit.folds}-fold CV accuracy {fit.cv_accuracy:.4f}, "
                                               f"log loss {fit.cv_log_loss:.4f}")  # fmt: skip
    logger.info("convex probe: L-BFGS logistic regression on %d x %d head inputs, C %g%s, train accuracy %.4f "
                "(%.1f s)", *x.shape, fit.C, loss, fit.train_accuracy, time.perf_counter() - started)  # fmt: skip
    return fit
