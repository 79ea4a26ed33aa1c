"""Probes: how much a learned representation tells a linear classifier. Chapter 10 introduces
them; chapter 12 uses them.

A *linear probe* fits logistic regression on the features of a few labelled examples (an
autoencoder's codes, PCA components or raw pixels) and scores it on held-out examples. The features
are standardized first (zero mean, unit variance per feature, from the labelled examples only):
logistic regression's L2 penalty is not scale-invariant, and without standardization it penalizes
features with a small range (a sparse code's rarely active units) far more than features with a
large one, so the probe would compare feature scales rather than representations.

What it is not: a tuned classifier (the penalty strength is scikit-learn's default, C = 1, for
every representation alike).
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["linear_probe", "make_linear_probe"]


def _as_features(name: str, value: object) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or len(array) == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array (examples, features), got shape {array.shape}"
        )
    return array


def _as_labels(name: str, value: object, n: int) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{name} must be a 1-D array of {n} labels, got shape {array.shape}")
    return array


def make_linear_probe(max_iter: int = 1000) -> Pipeline:
    """The probe, unfitted: StandardScaler then LogisticRegression (C = 1). Chapter 10."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))


def linear_probe(train_features: object, train_labels: object, test_features: object,
                 test_labels: object, max_iter: int = 1000) -> float:
    """Test accuracy of `make_linear_probe()` fitted on the training features. Chapter 10.

    Features are (examples, features) arrays or tensors; labels 1-D. The scaler is fitted on the
    training features only, so nothing about the test set leaks into the probe.
    """
    A = _as_features("train_features", train_features)
    B = _as_features("test_features", test_features)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"train and test features must have the same width, got {A.shape[1]} and {B.shape[1]}"
        )
    y_a = _as_labels("train_labels", train_labels, len(A))
    y_b = _as_labels("test_labels", test_labels, len(B))
    if len(np.unique(y_a)) < 2:
        raise ValueError("train_labels must contain at least two classes")
    probe = make_linear_probe(max_iter).fit(A, y_a)
    return float(probe.score(B, y_b))
