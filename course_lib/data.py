"""Data: the course's offline data sets as tensors with fixed-seed splits.

Nothing here touches the network. Digits come bundled with scikit-learn, MNIST-1D is generated
procedurally by the `mnist1d` package (Greydanus 2020), faces come bundled with scikit-image, and
the 2-D sets are synthetic. Introduced in chapter 1; used by every chapter.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from course_lib import checks

__all__ = ["Split", "load_digits", "load_mnist1d", "load_faces", "make_moons", "make_spirals"]


@dataclass(frozen=True)
class Split:
    """Train / validation / test tensors. `X_*` are float32, `y_*` int64 class labels."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        """Size of one example, flattened."""
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def num_classes(self) -> int:
        """Number of distinct labels across all splits."""
        return int(torch.cat([self.y_train, self.y_val, self.y_test]).max()) + 1

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}={tuple(getattr(self, 'X_' + name).shape)}" for name in ("train", "val", "test")
        )
        return f"Split({shapes}, classes={self.num_classes})"


def _split(X: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Stratified fixed-seed split into train / validation / test tensors."""
    checks.fraction("val_fraction", val_fraction)
    checks.fraction("test_fraction", test_fraction)
    checks.non_negative_int("seed", seed)
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must leave some training data (< 1)")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    if val_fraction > 0:
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=seed, stratify=y_rest
        )
    else:
        X_train, y_train = X_rest, y_rest
        X_val, y_val = X_rest[:0], y_rest[:0]
    return _as_split(X_train, y_train, X_val, y_val, X_test, y_test)


def _as_split(*arrays: np.ndarray) -> Split:
    tensors = [
        torch.as_tensor(np.asarray(a), dtype=torch.float32 if i % 2 == 0 else torch.int64)
        for i, a in enumerate(arrays)
    ]
    return Split(*tensors)


def load_digits(val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images), flattened to 64 features scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    return _split(digits.data / 16.0, digits.target, val_fraction, test_fraction, seed)


@lru_cache(maxsize=4)
def _mnist1d_arrays(shuffle_positions: bool, seed: int) -> tuple[np.ndarray, ...]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.shuffle_seq = shuffle_positions
    state = np.random.get_state()  # make_dataset reseeds NumPy's global RNG: leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_mnist1d(
    num_val: int = 0, shuffle_positions: bool = False, seed: int = 42
) -> Split:
    """MNIST-1D (Greydanus 2020): 4,000 training and 1,000 test signals of length 40, 10 classes.

    Generated procedurally (once per process and seed) with the package's default arguments, so
    the numbers are comparable with the paper's. `num_val` examples are taken from the end of the
    training set for validation. `shuffle_positions=True` applies one fixed permutation to the 40
    positions of every signal (the paper's "shuffled" control: spatial structure destroyed).
    """
    checks.integer("num_val", num_val, minimum=0, maximum=3999)
    checks.non_negative_int("seed", seed)
    x, y, x_test, y_test = _mnist1d_arrays(bool(shuffle_positions), seed)
    n_train = len(x) - num_val
    return _as_split(x[:n_train], y[:n_train], x[n_train:], y[n_train:], x_test, y_test)


def load_faces(val_fraction: float = 0.0, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """scikit-image's bundled LFW subset: 100 faces (label 1) and 100 non-faces (label 0), 25x25.

    Images are float32 in [0, 1] with shape (N, 25, 25).
    """
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)
    labels = np.array([1] * 100 + [0] * 100)
    return _split(images, labels, val_fraction, test_fraction, seed)


def make_moons(num_examples: int = 1000, noise: float = 0.2, seed: int = 0) -> Split:
    """Two interleaving half circles in 2-D (scikit-learn), split 60/20/20. Chapter 1."""
    from sklearn.datasets import make_moons as sk_make_moons

    checks.integer("num_examples", num_examples, minimum=10)
    checks.non_negative_float("noise", noise)
    checks.non_negative_int("seed", seed)
    X, y = sk_make_moons(n_samples=num_examples, noise=noise, random_state=seed)
    return _split(X, y, 0.2, 0.2, seed)


def make_spirals(num_examples: int = 1000, num_classes: int = 2, noise: float = 0.1, seed: int = 0) -> Split:
    """Interleaved 2-D spirals, one arm per class, split 60/20/20. Not linearly separable. Chapter 1."""
    checks.integer("num_classes", num_classes, minimum=2)
    checks.integer("num_examples", num_examples, minimum=10 * num_classes,
                   wanted=f"an integer >= 10 * num_classes = {10 * num_classes}")
    checks.non_negative_float("noise", noise)
    checks.non_negative_int("seed", seed)
    rng = np.random.default_rng(seed)
    per_class = num_examples // num_classes
    radius = np.linspace(0.05, 1.0, per_class)
    X, y = [], []
    for k in range(num_classes):
        angle = np.linspace(0, 3 * np.pi, per_class) + 2 * np.pi * k / num_classes
        angle = angle + rng.normal(scale=noise * 2, size=per_class)
        X.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        y.append(np.full(per_class, k))
    return _split(np.concatenate(X), np.concatenate(y), 0.2, 0.2, seed)
