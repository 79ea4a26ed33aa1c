"""course_lib.data: splits, sizes and generated sets, against direct counts and closed forms."""
from __future__ import annotations

import math

import pytest
import torch

import course_lib as cl

# ---- data: splits ---------------------------------------------------------------------------


def _rows(*tensors: torch.Tensor) -> list[tuple]:
    return sorted(tuple(row.flatten().tolist()) for t in tensors for row in t)


def _assert_partition(split, X_all, y_all, val_fraction, test_fraction):
    """The three splits are the whole data set, once each, with the class proportions kept."""
    n = len(X_all)
    parts = [(split.X_train, split.y_train), (split.X_val, split.y_val),
             (split.X_test, split.y_test)]
    assert _rows(*(torch.cat([x.flatten(1), y[:, None].float()], 1) for x, y in parts)) == _rows(
        torch.cat([X_all.flatten(1), y_all[:, None].float()], 1))
    assert abs(len(split.X_test) - test_fraction * n) <= 1
    assert abs(len(split.X_val) - val_fraction * n) <= 1 + (val_fraction > 0)
    classes = y_all.unique()
    for _X, y in parts:
        if len(y):
            for c in classes:  # stratified: each class in proportion, to within 1-2 examples
                share = (y_all == c).float().mean().item()
                assert abs((y == c).sum().item() - share * len(y)) <= 2


def test_digits_splits_are_stratified_disjoint_and_complete():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X_all, y_all = torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(
        digits.target)
    for val, test in [(0.2, 0.2), (0.1, 0.3), (0.0, 0.25)]:
        _assert_partition(cl.load_digits(val, test), X_all, y_all, val, test)
    images = cl.load_digits(images=True)
    assert images.X_train.shape[1:] == (8, 8)
    assert torch.equal(images.X_train.flatten(1), cl.load_digits().X_train)


def test_synthetic_sets_are_split_60_20_20_with_every_point_once():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=300, noise=0.2, random_state=5)
    _assert_partition(cl.make_moons(300, seed=5), torch.tensor(X, dtype=torch.float32),
                      torch.tensor(y), 0.2, 0.2)
    spirals = cl.make_spirals(300, num_classes=3, seed=1)
    y_all = torch.cat([spirals.y_train, spirals.y_val, spirals.y_test])
    assert len(y_all) == 300 and torch.bincount(y_all).tolist() == [100, 100, 100]
    assert [len(spirals.X_train), len(spirals.X_val), len(spirals.X_test)] == [180, 60, 60]
    radius = torch.cat([spirals.X_train, spirals.X_val, spirals.X_test]).norm(dim=1)
    assert radius.min() >= 0.0 and radius.max() <= 1.0 + 1e-6 and radius.max() > 0.99


def test_faces_split_keeps_faces_and_non_faces_in_proportion():
    from skimage.data import lfw_subset

    images = torch.tensor(lfw_subset(), dtype=torch.float32)
    labels = torch.tensor([1] * 100 + [0] * 100)
    _assert_partition(cl.load_faces(0.2, 0.2), images, labels, 0.2, 0.2)
    faces = cl.load_faces()
    assert len(faces.X_val) == 0 and len(faces.X_test) == 50


def test_mnist1d_validation_rows_are_the_last_training_rows_and_none_is_reused():
    whole, split = cl.load_mnist1d(), cl.load_mnist1d(num_val=500)
    assert torch.equal(torch.cat([split.X_train, split.X_val]), whole.X_train)
    assert torch.equal(torch.cat([split.y_train, split.y_val]), whole.y_train)
    assert torch.equal(split.X_test, whole.X_test) and torch.equal(split.y_test, whole.y_test)
    assert not set(_rows(split.X_val)) & set(_rows(split.X_train))
    assert len(whole.X_val) == 0 and len(whole.X_train) == 4000


def test_subset_keeps_the_first_examples_and_the_rest_of_the_split():
    d = cl.make_moons(100)
    small = d.subset(7)
    assert torch.equal(small.X_train, d.X_train[:7]) and torch.equal(small.y_train, d.y_train[:7])
    assert small.X_val is d.X_val and small.X_test is d.X_test
    assert small.num_features == 2 and small.num_classes == 2
    assert "train=(7, 2)" in repr(small)


# ---- from the first `make mutate` run: faults that survived ----------------------------------


def test_spiral_arms_follow_their_closed_form():
    """Without noise, class k's points lie on angle = 3 pi t + 2 pi k / K, radius 0.05 + 0.95 t."""
    K, per_class = 3, 50
    d = cl.make_spirals(K * per_class, num_classes=K, noise=0.0, seed=0)
    X, y = torch.cat([d.X_train, d.X_val, d.X_test]), torch.cat([d.y_train, d.y_val, d.y_test])
    radius = X.norm(dim=1)
    t = (radius - 0.05) / 0.95
    angle = torch.atan2(X[:, 0], X[:, 1])
    expected = 3 * math.pi * t + 2 * math.pi * y / K
    gap = torch.remainder(angle - expected + math.pi, 2 * math.pi) - math.pi
    assert gap.abs().max() < 1e-3
    noisy = cl.make_spirals(2000, num_classes=2, noise=0.1, seed=0)
    X, y = torch.cat([noisy.X_train, noisy.X_val]), torch.cat([noisy.y_train, noisy.y_val])
    t = (X.norm(dim=1) - 0.05) / 0.95
    gap = torch.remainder(torch.atan2(X[:, 0], X[:, 1]) - 3 * math.pi * t - math.pi * y
                          + math.pi, 2 * math.pi) - math.pi
    assert gap.std().item() == pytest.approx(0.2, rel=0.1)  # the angle's noise: 2 * noise


def test_default_sizes_the_chapters_rely_on():
    moons = cl.make_moons()
    assert len(moons.X_train) + len(moons.X_val) + len(moons.X_test) == 1000
    from course_lib.layers import Dropout

    torch.manual_seed(0)
    kept = (Dropout().train()(torch.ones(20_000)) > 0).float().mean().item()
    assert kept == pytest.approx(0.5, abs=0.02)  # the default p is 0.5


def test_a_split_must_leave_training_data():
    with pytest.raises(ValueError, match="leave some training data"):
        cl.load_digits(val_fraction=0.6, test_fraction=0.5)
