"""How well a frozen checkpoint suits a labelled data set, measured on its features alone.

Pure functions on arrays (features `(n, d)`, integer labels `(n,)`), so they are tested on data with
known structure and reused by `hf-finetune advise`. Each answers one question before any fine-tuning:

- `class_counts`: how much data per class (the "little vs much data" axis of the classic 2x2 advice);
- `linear_probe_accuracy`, `knn_accuracy`: how well the frozen features already separate the classes
  (cross-validated, so a probe cannot score by memorising a small sample);
- `logme`: LogME (You et al., ICML 2021, https://arxiv.org/abs/2102.11005), the log marginal evidence
  of a Bayesian linear model from features to one-hot labels; higher is a better fit, no training;
- `proxy_a_distance`: proxy A-distance (Ben-David et al. 2007), 2(1 - 2 err) of a cross-validated
  linear classifier told to separate target features from source-reference features: 0 when the two
  samples are indistinguishable, 2 when they are disjoint.
"""

from __future__ import annotations

import numpy as np

# LogME's fixed point converges in 2-3 steps on real features and always within ~10 (You et al.);
# the iteration stops once alpha/beta moves by less than this relative amount.
LOGME_MAX_ITERATIONS = 100
LOGME_TOLERANCE = 1e-6
# Folds for the cross-validated probes; fewer when the smallest class has fewer examples.
CV_FOLDS = 5
KNN_NEIGHBOURS = 10


def class_counts(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Examples per class, in label-id order (classes without examples count 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels, minlength=num_classes or int(labels.max()) + 1)


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the majority class: what a probe must beat."""
    counts = class_counts(labels)
    return float(counts.max() / counts.sum())


def _folds(labels: np.ndarray, seed: int):
    from sklearn.model_selection import StratifiedKFold

    smallest = int(class_counts(labels)[class_counts(labels) > 0].min())
    if smallest < 2:
        raise ValueError("every class needs at least 2 examples for a cross-validated probe")
    return StratifiedKFold(n_splits=min(CV_FOLDS, smallest), shuffle=True, random_state=seed)


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a logistic regression on standardised frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # C=1 on standardised features: the usual L2 strength; enough with a few hundred examples.
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return float(cross_val_score(probe, features, labels, cv=_folds(labels, seed)).mean())


def knn_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0, k: int = KNN_NEIGHBOURS) -> float:
    """Mean cross-validated accuracy of a cosine k-nearest-neighbour vote: does the space cluster by class?"""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = _folds(labels, seed)
    smallest_train = len(labels) - int(np.ceil(len(labels) / folds.n_splits))
    knn = KNeighborsClassifier(n_neighbors=max(1, min(k, smallest_train)), metric="cosine")
    return float(cross_val_score(knn, features, labels, cv=folds).mean())


def _evidence(n: int, d: int, alpha: float, beta: float, sigma: np.ndarray, residual: float, m2: float) -> float:
    """log p(y | F, alpha, beta) / n for y = F w + noise, w ~ N(0, I/alpha), noise ~ N(0, 1/beta).

    log|A| with A = alpha I + beta F^T F runs over all d directions: the rank(F) ones with
    eigenvalue alpha + beta sigma_i and the d - rank null ones with eigenvalue alpha.
    """
    log_det = np.log(alpha + beta * sigma).sum() + (d - len(sigma)) * np.log(alpha)
    value = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - beta / 2 * residual
        - alpha / 2 * m2
        - log_det / 2
        - n / 2 * np.log(2 * np.pi)
    )
    return float(value / n)


def _norms(sigma: np.ndarray, x2: np.ndarray, outside: float, t: float) -> tuple[float, float, float]:
    """gamma, |m|^2 and |y - F m|^2 at t = alpha / beta (see `logme_fit`)."""
    gamma = float((sigma / (sigma + t)).sum())
    m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
    return gamma, m2, float((x2 * t**2 / (sigma + t) ** 2).sum()) + outside


def logme_fit(features: np.ndarray, targets: np.ndarray) -> list[tuple[float, float, float]]:
    """(log evidence per sample, alpha, beta) at the maximum, for each column of `targets` `(n, k)`.

    MacKay's fixed point for y = F w + noise, w ~ N(0, I/alpha), noise ~ N(0, 1/beta). With the thin
    SVD F = U S V^T (sigma = s^2) and x = U^T y, the posterior mean's norm and the residual are closed
    forms in t = alpha / beta, so each iteration costs O(rank) (You et al. 2021, and the fixed-point
    form of "Ranking and Tuning Pre-trained Models", arXiv 2110.10545):
        gamma = sum sigma / (sigma + t)           (effective number of parameters)
        |m|^2 = sum sigma x^2 / (sigma + t)^2
        |y - F m|^2 = sum x^2 t^2 / (sigma + t)^2 + (|y|^2 - |x|^2)
        alpha = gamma / |m|^2,  beta = (n - gamma) / |y - F m|^2
    """
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * 1e-10 if s.size and s.max() > 0 else np.zeros_like(s, dtype=bool)
    u, sigma = u[:, keep], s[keep] ** 2
    fits = []
    for y in np.asarray(targets, dtype=np.float64).T:
        x2 = (u.T @ y) ** 2
        outside = max(float(y @ y - x2.sum()), 0.0)  # the part of y no feature direction reaches
        alpha, beta = 1.0, 1.0
        for _ in range(LOGME_MAX_ITERATIONS):
            t = alpha / beta
            gamma, m2, residual = _norms(sigma, x2, outside, t)
            # The tiny floors keep a perfectly fitted or all-zero target finite, as in the reference code.
            alpha, beta = gamma / (m2 + 1e-10), (n - gamma) / (residual + 1e-10)
            if abs(alpha / beta - t) / t < LOGME_TOLERANCE:
                break
        _, m2, residual = _norms(sigma, x2, outside, alpha / beta)
        fits.append((_evidence(n, d, alpha, beta, sigma, residual, m2), alpha, beta))
    return fits


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of a classification data set: the mean over classes of the evidence for its one-hot target."""
    labels = np.asarray(labels, dtype=np.int64)
    one_hot = np.eye(int(labels.max()) + 1)[labels]
    return float(np.mean([evidence for evidence, _, _ in logme_fit(features, one_hot)]))


def proxy_a_distance(target: np.ndarray, reference: np.ndarray, seed: int = 0) -> float:
    """2 (1 - 2 err) of a cross-validated linear domain classifier, clipped to [0, 2].

    Both samples are cut to the same size first, so chance error is exactly 0.5 and a PAD of 0
    means "the classifier cannot tell them apart".
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(target), len(reference))
    if n < CV_FOLDS:
        raise ValueError(f"proxy A-distance needs at least {CV_FOLDS} examples from each domain, got {n}")
    both = np.concatenate([target[rng.permutation(len(target))[:n]], reference[rng.permutation(len(reference))[:n]]])
    domain = np.repeat([0, 1], n)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    error = 1.0 - float(cross_val_score(classifier, both, domain, cv=folds).mean())
    return float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0))
