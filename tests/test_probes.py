"""The linear probe of chapters 10 and 12: scikit-learn's pipeline, scale-invariant, checked."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import course_lib as cl


def _blobs(seed: int, n: int = 60, width: int = 5):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    centres = rng.normal(0, 1.5, (3, width))
    return centres[y] + rng.normal(0, 1, (n, width)), y


def test_matches_a_scaler_and_logistic_regression_pipeline():
    (A, y_a), (B, y_b) = _blobs(0), _blobs(1)
    B, y_b = B[:45], y_b[:45]
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    expected = reference.fit(A, y_a).score(B, y_b)
    assert cl.linear_probe(A, y_a, B, y_b) == pytest.approx(expected, abs=0)
    got = cl.linear_probe(torch.tensor(A), torch.tensor(y_a), torch.tensor(B), torch.tensor(y_b))
    assert got == pytest.approx(expected, abs=0)


def test_rescaling_a_feature_does_not_change_the_probe():
    # features with a tiny range (rarely active sparse units) are what an unscaled probe
    # penalizes hardest; standardized, the probe gives the same predictions at any scale
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    X = rng.normal(0, 1, (200, 4))
    X[:, 0] += 1.5 * (2 * y - 1)  # the informative feature
    scale = np.array([1e-3, 1, 1, 1])
    A, B = X[:100], X[100:]
    plain = cl.linear_probe(A, y[:100], B, y[100:])
    shrunk = cl.linear_probe(A * scale, y[:100], B * scale, y[100:])
    assert shrunk == pytest.approx(plain, abs=1e-12)
    unscaled = LogisticRegression(max_iter=1000).fit(A * scale, y[:100])
    assert unscaled.score(B * scale, y[100:]) < plain - 0.2  # what standardizing fixes


def test_separable_classes_are_perfect():
    A = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    assert cl.linear_probe(A, [0, 0, 1, 1], A + 0.05, [0, 0, 1, 1]) == 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(4), [0, 1, 0, 1], np.zeros((2, 1)), [0, 1]), "2-D array"),
        ((np.zeros((4, 2)), [0, 1, 0], np.zeros((2, 2)), [0, 1]), "1-D array of 4 labels"),
        ((np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 3)), [0, 1]), "same width"),
        ((np.zeros((4, 2)), [1, 1, 1, 1], np.zeros((2, 2)), [0, 1]), "two classes"),
    ],
)
def test_bad_input_says_what_was_expected(args, message):
    with pytest.raises(ValueError, match=message):
        cl.linear_probe(*args)
