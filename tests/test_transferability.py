"""Each transferability measure on real data of known structure: scikit-learn's 8x8 digit images.

Raw pixels are the "frozen features" here: digits 0 and 1 are well separated in pixel space,
the same labels shuffled carry no information, and two random halves of one set are one domain.
"""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hf_finetune.analysis.transferability import (
    chance_accuracy,
    class_counts,
    knn_accuracy,
    linear_probe_accuracy,
    logme,
    logme_fit,
    proxy_a_distance,
)


@pytest.fixture(scope="module")
def digit_pixels():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def zeros_and_ones(digit_pixels):
    features, labels = digit_pixels
    keep = (labels == 0) | (labels == 1)
    return features[keep], labels[keep]


def test_separated_classes_score_high_and_shuffled_labels_score_chance(zeros_and_ones):
    features, labels = zeros_and_ones
    shuffled = np.random.default_rng(0).permutation(labels)
    assert chance_accuracy(labels) == pytest.approx(0.5, abs=0.02)
    assert linear_probe_accuracy(features, labels) > 0.98
    assert knn_accuracy(features, labels) > 0.98
    assert abs(linear_probe_accuracy(features, shuffled) - 0.5) < 0.1
    assert abs(knn_accuracy(features, shuffled) - 0.5) < 0.1
    assert logme(features, labels) > logme(features, shuffled) + 1.0


def test_logme_ranks_ten_digit_classes_above_their_shuffled_labels(digit_pixels):
    features, labels = digit_pixels
    assert logme(features, labels) > logme(features, np.random.default_rng(1).permutation(labels)) + 0.3


def test_logme_is_the_maximum_of_the_exact_marginal_likelihood(zeros_and_ones):
    """At LogME's alpha, beta the value equals log N(y; 0, F F^T / alpha + I / beta) / n, and moving either lowers it.

    The digit pixels have constant (all-zero) columns, so F is rank-deficient and the null directions count.
    """
    features, labels = zeros_and_ones
    f, y = features[:120], (labels[:120] == 1).astype(float)
    assert np.linalg.matrix_rank(f) < f.shape[1]
    [(evidence, alpha, beta)] = logme_fit(f, y[:, None])

    def exact(a, b):
        cov = f @ f.T / a + np.eye(len(f)) / b
        return multivariate_normal(np.zeros(len(f)), cov).logpdf(y) / len(f)

    assert evidence == pytest.approx(exact(alpha, beta), abs=1e-6)
    for da, db in ((1.3, 1), (1 / 1.3, 1), (1, 1.3), (1, 1 / 1.3)):
        assert exact(alpha * da, beta * db) < evidence


def test_proxy_a_distance_is_near_zero_for_one_domain_and_near_two_for_disjoint_ones(digit_pixels):
    features, labels = digit_pixels
    order = np.random.default_rng(0).permutation(len(features))
    assert proxy_a_distance(features[order[:400]], features[order[400:800]]) < 0.3
    assert proxy_a_distance(features[labels == 0], features[labels == 1]) > 1.8


def test_class_counts_keep_empty_classes():
    assert class_counts(np.array([0, 2, 2]), num_classes=4).tolist() == [1, 0, 2, 0]
