"""What users rely on, checked against direct computations (issue 16, `make mutate`).

Each test states a behaviour a learner or an instructor relies on: what `fit` logs, the modes
it and `evaluate` run in, how data are split, what "dead" and "saturated" mean, how close an
answer must be to pass, and that missing results never pass. benchmarks/mutation.md lists the
injected faults they catch.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib as cl
from course_lib.diagnostics import activation_stats, record_activations
from course_lib.grading import all_exercises
from course_lib.grading.checker import Outcome, judge, reference_outcomes
from course_lib.grading.compare import difference

# ---- fit and evaluate: what is logged -------------------------------------------------------


def _classification(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    return X, torch.randint(0, 3, (n,), generator=g)


def _frozen_fit(model, X, y, **kwargs):
    """`fit` with SGD at lr 0: the model never changes, so every logged number is computable."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return cl.fit(model, X, y, optimizer=optimizer, **kwargs)


def test_at_lr_0_fit_logs_the_loss_and_accuracy_of_the_model_on_the_data():
    torch.manual_seed(0)
    X, y = _classification(103)  # batches of 10: the last one has 3 examples
    X_val, y_val = _classification(37, seed=1)
    model = nn.Linear(5, 3)
    with torch.no_grad():
        loss, acc = F.cross_entropy(model(X), y).item(), cl.accuracy(model(X), y)
        val_loss, val_acc = F.cross_entropy(model(X_val), y_val).item(), cl.accuracy(
            model(X_val), y_val)
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=3, batch_size=10,
                    validation=(X_val, y_val))
    assert h.num_epochs == 3 and not h.diverged and not h.stopped
    for key, expected in [("loss", loss), ("accuracy", acc), ("val_loss", val_loss),
                          ("val_accuracy", val_acc)]:
        assert h[key] == pytest.approx([expected] * 3, rel=1e-5), key
    assert 0.2 < acc < 0.6  # a real mix of right and wrong answers, not all or nothing


def test_at_lr_0_every_metric_sees_each_example_with_its_own_label():
    X, y = _classification(64)
    model = nn.Linear(5, 3)
    seen = []

    def count_right(output, target):
        seen.append(len(target))
        return (output.argmax(1) == target).sum().item()

    with torch.no_grad():
        right = (model(X).argmax(1) == y).sum().item()
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=2, batch_size=7,
                    metrics={"right": count_right})
    assert h["right"] == [right, right] and seen == [64, 64]
    assert set(h.keys()) == {"loss", "right"}  # the given metrics replace the default accuracy


def test_at_lr_0_an_autoencoder_logs_its_reconstruction_loss_and_terms():
    X, _ = _classification(50)
    model = nn.Linear(5, 5)

    def loss_fn(output, target):
        mse = F.mse_loss(output, target)
        return {"loss": 2 * mse, "mse": mse}

    with torch.no_grad():
        mse = F.mse_loss(model(X), X).item()
    penalty = {"l1": lambda m, x: 0.01 * m.weight.abs().sum()}
    with torch.no_grad():
        l1 = 0.01 * model.weight.abs().sum().item()
    h = _frozen_fit(model, X, None, loss_fn=loss_fn, num_epochs=1, batch_size=16,
                    validation=X, penalties=penalty)
    assert set(h.keys()) == {"loss", "mse", "data_loss", "l1", "val_loss", "val_mse",
                             "val_data_loss", "val_l1"}
    for prefix in ("", "val_"):
        assert h[prefix + "mse"][0] == pytest.approx(mse, rel=1e-5)
        assert h[prefix + "data_loss"][0] == pytest.approx(2 * mse, rel=1e-5)
        assert h[prefix + "l1"][0] == pytest.approx(l1, rel=1e-5)
        assert h[prefix + "loss"][0] == pytest.approx(2 * mse + l1, rel=1e-5)


def test_evaluate_returns_the_loss_terms_and_metrics_of_the_whole_set_in_batches():
    X, y = _classification(45)
    model = nn.Linear(5, 3)
    with torch.no_grad():
        expected = F.cross_entropy(model(X), y).item(), cl.accuracy(model(X), y)
    for batch_size in (7, 45, 4096):
        got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=batch_size)
        assert got == pytest.approx({"loss": expected[0], "accuracy": expected[1]}, rel=1e-5)
    assert cl.evaluate(model, X, y) == pytest.approx({"accuracy": expected[1]})
    penalty = {"p": lambda m, x: x.abs().mean()}  # a per-batch mean: weighted by batch size
    got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=7, penalties=penalty)
    assert got["p"] == pytest.approx(X.abs().mean().item(), rel=1e-5)
    assert got["loss"] == pytest.approx(expected[0] + X.abs().mean().item(), rel=1e-5)
    assert got["data_loss"] == pytest.approx(expected[0], rel=1e-5)


# ---- fit and evaluate: train and eval modes (dropout, batch norm) ---------------------------


def _noisy_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(16, 3))


def test_fit_trains_in_train_mode_and_validates_in_eval_mode():
    X, y = _classification(96)
    model = _noisy_model()
    model.eval()
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=1, batch_size=32,
                    validation=(X, y))
    assert model.training  # fit leaves the model in train mode
    model.eval()
    with torch.no_grad():
        eval_loss = F.cross_entropy(model(X), y).item()
    # validation: eval mode (no dropout, running statistics), on the same data and model
    assert h["val_loss"][0] == pytest.approx(eval_loss, rel=1e-5)
    # training: dropout active and batch statistics: a different (here larger) loss
    assert h["loss"][0] > eval_loss + 0.05


def test_evaluate_runs_in_eval_mode_leaves_running_stats_alone_and_restores_the_mode():
    X, y = _classification(64)
    model = _noisy_model()
    model.train()
    model(X)  # running statistics away from their initial values
    bn = model[1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=10)
    assert model.training
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(X), y).item()
    assert got["loss"] == pytest.approx(expected, rel=1e-5)
    again = cl.evaluate(model, X, y, loss_fn=F.cross_entropy)
    assert not model.training and again["loss"] == pytest.approx(expected, rel=1e-5)


def test_the_scheduler_steps_once_per_epoch_whatever_the_number_of_batches():
    X, y = _classification(50)
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=3,
           batch_size=4, scheduler=scheduler)
    assert scheduler.last_epoch == 3 and optimizer.param_groups[0]["lr"] == 0.125


def test_train_gives_the_run_its_seed_optimizer_schedule_and_validation():
    data = cl.make_moons(200)
    run = cl.Run(lambda: nn.Linear(2, 2), lr=0.5, num_epochs=3, batch_size=16, optimizer="sgd",
                 momentum=0.9, schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, 0.1))
    result = cl.train(run, data, seed=3)
    assert result.run.seed == 3 and result.history.num_epochs == 3
    assert "val_accuracy" in result.history
    with torch.no_grad():
        val = cl.accuracy(result.model(data.X_val), data.y_val)
    assert result.history.last("val_accuracy") == pytest.approx(val)
    same = cl.train(run.replace(seed=3), data)
    assert torch.equal(same.model.weight, result.model.weight)
    other = cl.train(run, data, seed=4)
    assert not torch.equal(other.model.weight, result.model.weight)
    optimizer = cl.make_optimizer(run, nn.Linear(2, 2))
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["lr"] == 0.5


def test_summaries_of_seeds():
    assert cl.mean_std([0.5]) == (0.5, 0.0)
    mean, std = cl.mean_std([0.2, 0.4, 0.9])
    assert mean == pytest.approx(0.5) and std == pytest.approx(math.sqrt(0.13))
    assert cl.format_mean_std([0.2, 0.4, 0.9]) == "50.0 ± 36.1%"
    assert cl.format_mean_std([0.5, float("nan")]) == "diverged (1 of 2 seeds)"
    assert cl.format_score(0.4567) == "45.7%" and cl.format_score(0.4567, digits=2) == "45.67%"


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


# ---- diagnostics: activation statistics decided by hand --------------------------------------


class Fixed(nn.Module):
    """Returns a fixed activation tensor through an activation module (for its hook)."""

    def __init__(self, activation: nn.Module, values: torch.Tensor) -> None:
        super().__init__()
        self.act, self.values = activation, values

    def forward(self, x):
        return self.act(self.values)


def _one(activation, pre_activation):
    stats = activation_stats(Fixed(activation, pre_activation), torch.zeros(1))
    assert list(stats) == ["act"]
    return stats["act"]


def test_saturation_is_a_derivative_below_one_percent_of_its_maximum():
    # tanh: tanh' = 1 - tanh^2; below 0.01 from |x| > 2.99. Two of these four are saturated.
    tanh = _one(nn.Tanh(), torch.tensor([[0.0, 1.0, 3.2, -4.0]]))
    assert tanh.saturated == pytest.approx(0.5)
    # sigmoid: sigma' < 0.0025 from |x| > 5.99. One of four.
    assert _one(nn.Sigmoid(), torch.tensor([[0.0, 5.0, -7.0, 2.0]])).saturated == 0.25
    # hardtanh: flat where |output| reaches 1. Three of four (1.0 itself included).
    assert _one(nn.Hardtanh(), torch.tensor([[0.5, 1.0, 2.0, -3.0]])).saturated == 0.75
    # ReLU is not a saturating unit; a unit dead on every example is dead
    relu = _one(nn.ReLU(), torch.tensor([[-1.0, 2.0, -3.0, 0.0], [-1.0, -2.0, 3.0, 0.0]]))
    assert relu.saturated == 0.0 and relu.dead == 0.5  # units 0 and 3; units 1, 2 live once
    assert relu.mean == pytest.approx(5 / 8)
    values = torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    assert relu.std == pytest.approx(values.std().item())


def test_dead_units_of_feature_maps_and_of_a_single_vector():
    maps = torch.ones(3, 2, 2, 2)
    maps[:, 0, 1, 1] = -1.0  # one position of channel 0 is negative in every example
    stats = _one(nn.ReLU(), maps)
    assert stats.dead == pytest.approx(1 / 8)  # a unit is a (channel, row, column) position
    single = _one(nn.ReLU(), torch.tensor([-1.0, 2.0]))  # 1-D: one unit over a batch of two
    assert single.dead == 0.0 and single.std == pytest.approx(math.sqrt(2))
    assert _one(nn.ReLU(), torch.tensor([-1.0, -2.0])).dead == 1.0
    lone = _one(nn.ReLU(), torch.tensor([5.0]))
    assert lone.std == 0.0 and lone.dead == 0.0


def test_record_activations_names_the_layers_and_removes_its_hooks():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 3), nn.ReLU())
    x = torch.randn(4, 2)
    with record_activations(model) as outputs:
        y = model(x)
    assert list(outputs) == ["1", "3"] and torch.equal(outputs["3"], y)
    assert all(not m._forward_hooks for m in model.modules())
    with record_activations(model, layer_types=(nn.Linear,)) as outputs:
        model(x)
    assert list(outputs) == ["0", "2"]
    model.eval()
    activation_stats(model, x)
    assert not model.training  # the mode is left as it is


# ---- grading: tolerance on near misses, missing results --------------------------------------


def _nudge(value, exercise, factor):
    """`value` with every float moved by `factor` times the exercise's tolerance, away from 0."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        step = factor * (exercise.atol + exercise.rtol * value.abs())
        return value + step.to(value.dtype) * torch.where(value < 0, -1.0, 1.0).to(value.dtype)
    if isinstance(value, float) and math.isfinite(value):
        return value + math.copysign(factor * (exercise.atol + exercise.rtol * abs(value)), value)
    if isinstance(value, (list, tuple)):
        return type(value)(_nudge(v, exercise, factor) for v in value)
    if isinstance(value, dict):
        return {k: _nudge(v, exercise, factor) for k, v in value.items()}
    return value


def _has_float(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and value.numel() > 0 and bool(value.isfinite().any())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


FLOAT_VALUED = [e for e in all_exercises()
                if any(o.status == "ok" and _has_float(o.value) for o in reference_outcomes(e)[1])]


def test_every_float_valued_exercise_is_tested_here():
    assert len(FLOAT_VALUED) >= 40


@pytest.mark.parametrize("exercise", FLOAT_VALUED, ids=lambda e: e.id)
def test_a_near_miss_fails_and_a_rounding_difference_passes(exercise):
    """Every float 3 tolerances off fails the check; 0.3 tolerances off passes it."""
    _, expected = reference_outcomes(exercise)
    assert judge(exercise, expected).passed
    for i, outcome in enumerate(expected):
        if outcome.status != "ok" or not _has_float(outcome.value):
            continue
        for factor, passes in ((3.0, False), (0.3, True)):
            got = list(expected)
            got[i] = Outcome("ok", _nudge(outcome.value, exercise, factor))
            assert judge(exercise, got).passed is passes, (i, factor)


def test_the_tolerances_reject_a_sigmoid_derivative_two_per_mille_too_large():
    exercise = cl.grading.get("activations.sigmoid_derivative")
    _, expected = reference_outcomes(exercise)
    got = [Outcome("ok", _scaled(o.value, 1.002)) if o.status == "ok" else o for o in expected]
    assert not judge(exercise, got).passed
    # no exercise accepts an error of 1e-3 relative to a value near 1, but the one whose answer
    # is a numerical integral (its tolerance is the quadrature's error)
    loose = {"gradients.variance_preserving_std": 2e-3}
    for e in all_exercises():
        assert e.rtol <= loose.get(e.id, 1e-4) and e.atol <= 1e-4, e.id


def _scaled(value, factor):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value * factor
    if isinstance(value, float):
        return value * factor
    if isinstance(value, (list, tuple)):
        return type(value)(_scaled(v, factor) for v in value)
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value


def test_comparison_of_numbers_containers_and_tensors():
    assert difference(1.0, 1.0 + 1e-7) is None and difference(1.0, 1.001) is not None
    assert difference(0.0, 5e-7) is None and difference(0.0, 5e-6) is not None  # atol 1e-6
    assert difference(3, 3.0) is None and difference(3, 3.5) is not None
    assert difference(True, 1) is not None and difference(1.0, True) is not None
    assert difference(float("nan"), float("nan")) is None
    assert difference(1.0, float("nan")) is not None
    assert difference((1.0, 2.0), (1.0, 2.0)) is None and difference((1.0, 2.0), (1.0,)) is not None
    assert difference({"a": 1.0}, {"a": 1.0}) is None and difference({"a": 1.0}, {"b": 1.0})
    assert difference({"a": 1.0}, {"a": 2.0}) is not None
    t = torch.tensor([1.0, -2.0, 0.0])
    assert difference(t, t.clone()) is None and difference(t, t * 1.001) is not None
    assert difference(t, t.double()) is not None  # the dtype is part of the answer
    assert difference(t, t[:2]) is not None and difference(t, t.reshape(1, 3)) is not None
    nan = torch.tensor([float("nan"), 1.0])
    assert difference(nan, nan.clone()) is None and difference(t[:2], nan) is not None
    assert difference(t, t.tolist()) is not None


@pytest.mark.parametrize("exercise", all_exercises(), ids=lambda e: e.id)
def test_missing_outcomes_never_pass(exercise):
    cases, expected = reference_outcomes(exercise)
    assert not judge(exercise, []).passed
    assert not judge(exercise, expected[:-1]).passed
    assert judge(exercise, expected).num_cases == len(cases)
    broken = [Outcome("error", error="ValueError: no")] + list(expected[1:])
    if expected[0].status == "ok":
        result = judge(exercise, broken)
        assert not result.passed and result.num_failed >= 1


def test_the_grader_scores_missing_outcomes_zero():
    import io

    from course_lib.grading.judging import judge_entries
    from course_lib.grading.submissions import Submission

    exercise = all_exercises()[0]
    _, expected = reference_outcomes(exercise)

    def entry(outcomes):
        buffer = io.BytesIO()
        torch.save({"missing": False, "outcomes": [
            {"status": o.status, "value": o.value, "error": o.error, "mutated": None}
            for o in outcomes]}, buffer)
        return buffer.getvalue()

    scores = {}
    for name, outcomes in [("all", expected), ("none", []), ("fewer", expected[:-1])]:
        row = Submission(name)
        judge_entries(row, [exercise], {}, [entry(outcomes)])
        scores[name] = row.scores[exercise.id]
    n = len(expected)  # partial credit: a missing outcome is a failed case, not a zero
    assert scores == {"all": 1, "none": 0, "fewer": round((n - 1) / n, 4)}


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


def test_layer_norm_takes_a_single_vector_and_group_norm_names_a_bad_eps():
    from course_lib.layers import GroupNorm, LayerNorm

    x = torch.randn(6)
    torch.testing.assert_close(LayerNorm(6)(x), F.layer_norm(x, (6,)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="eps"):
        GroupNorm(2, 4, eps=0.0)


def test_corruption_of_image_batches_penalty_weights_of_zero_and_named_bad_inputs():
    from course_lib.autoencoders import corrupt, l1_code_term, reconstruction_loss

    images = torch.rand(4, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    noisy = corrupt(images, "gaussian", 0.5, generator=g)
    assert noisy.shape == images.shape and (noisy - images).std().item() == pytest.approx(0.5,
                                                                                        rel=0.15)
    masked = corrupt(images, "masking", 0.5, generator=g)
    assert masked.shape == images.shape and 0.3 < (masked == 0).float().mean().item() < 0.7
    assert l1_code_term(0.0) is not None  # a weight of 0 switches a penalty off; it is allowed
    with pytest.raises(TypeError, match="^x must be a torch.Tensor"):
        corrupt("not a tensor", "gaussian", 0.1)
    with pytest.raises(TypeError, match="^x_hat must be a torch.Tensor"):
        reconstruction_loss("not a tensor", images)


# ---- grading: faults that survived the second `make mutate` run (compare.py, check.py) --------
# What a learner reads and what the ranking of failing cases rests on, on inputs whose answer is
# known by hand: the tolerance arithmetic of `excess` and `relative_error`, the wording of each
# mismatch, plain values, and the verdict (id, counts, hint) of `judge` and `grade_solution`.


def test_excess_counts_how_many_tolerances_off_in_closed_form():
    """excess = max |got - expected| / (atol + rtol |expected|); NaN matches only NaN."""
    from course_lib.grading.compare import excess

    assert excess(2.0, 2.1, rtol=0.01, atol=0.03) == pytest.approx(0.1 / (0.03 + 0.01 * 2.0))
    assert excess(1.0, 1.0 + 2e-5) == pytest.approx(2e-5 / (1e-6 + 1e-5), rel=1e-6)  # defaults
    assert excess(1.0, 1.0) == 0.0 and excess(-3, -3) == 0.0
    assert excess(2.0, torch.tensor(2.5), rtol=0.0, atol=1.0) == 0.5  # a one-value tensor
    assert excess(float("nan"), float("nan")) == 0.0
    assert excess(1.0, float("nan")) == math.inf
    assert excess(1.0, "1.0") == math.inf and excess(1.0, True) == math.inf
    e, g = torch.tensor([2.0, -4.0]), torch.tensor([2.0, -5.0])
    assert excess(e, g, rtol=0.1, atol=0.5) == pytest.approx(1.0 / (0.5 + 0.1 * 4.0))
    assert excess(torch.tensor([2.0]), torch.tensor([3.0]), rtol=0.0, atol=0.5) == 2.0
    assert excess(torch.zeros(0), torch.zeros(0)) == 0.0
    nan = float("nan")
    assert excess(torch.tensor([1.0, nan]), torch.tensor([1.0, nan])) == 0.0
    assert excess(torch.tensor([1.0, 2.0]), torch.tensor([1.0, nan])) == math.inf
    assert excess(torch.tensor([1.0, nan]), torch.tensor([1.0, 2.0])) == math.inf
    assert excess(e, e.double()) == math.inf and excess(e, e[:1]) == math.inf
    # infinities agree when equal, as in `difference`; exact tolerances count any gap as inf
    inf = math.inf
    assert excess(torch.tensor([inf, -inf, 1.0]), torch.tensor([inf, -inf, 1.0])) == 0.0
    assert excess(torch.tensor([inf, 1.0]), torch.tensor([1.0, 1.0])) == math.inf
    assert excess(torch.tensor([1.0, 1.0]), torch.tensor([1.0, -inf])) == math.inf
    assert excess(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]), rtol=0.0, atol=0.0) == 0.0
    assert excess(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 2.0]), rtol=0.0, atol=0.0) == inf
    assert excess(inf, inf) == 0.0 and excess(inf, 1.0) == inf and excess(1.0, -inf) == inf
    assert excess(1.0, 1.0, rtol=0.0, atol=0.0) == 0.0 and excess(1, 2, rtol=0.0, atol=0.0) == inf
    # containers: the worst part, with the caller's tolerances; empty ones are within tolerance
    assert excess([2.0, 1.0], [2.1, 1.0], rtol=0.01, atol=0.0) == pytest.approx(0.1 / 0.02)
    assert excess((1.0, 2.0), [1.0, 2.0]) == 0.0 and excess([1.0], [1.0, 2.0]) == math.inf
    assert excess({"a": 2.0}, {"a": 2.1}, rtol=0.01, atol=0.0) == pytest.approx(0.1 / 0.02)
    assert excess([], []) == 0.0 and excess({}, {}) == 0.0
    # anything else: 0 when it matches, inf otherwise
    assert excess(True, True) == 0.0 and excess(None, None) == 0.0
    assert excess("relu", "relu") == 0.0 and excess("relu", "tanh") == math.inf


def test_relative_error_is_the_largest_gap_over_the_largest_expected_value():
    from course_lib.grading.compare import relative_error

    e = torch.tensor([2.0, -4.0])
    assert relative_error(e, torch.tensor([2.5, -4.0])) == pytest.approx(0.5 / 4.0)
    assert relative_error(torch.zeros(3), torch.zeros(3)) == 0.0
    assert relative_error(torch.zeros(3), torch.ones(3)) == math.inf
    assert relative_error(e, e[:1]) == math.inf and relative_error(e, [2.0, -4.0]) == math.inf


def test_each_mismatch_names_the_expected_and_the_obtained_value():
    t = torch.tensor([1.0, 2.0])
    assert difference(True, False) == "the result should be True, got False"
    assert difference(2.0, 3.0) == "the result should be 2, got 3"
    assert difference(2.0, "2") == "the result should be a number like 2, got str '2'"
    assert difference((1.0, 2.0), 3.0) == "the result should be a tuple of 2 values, got float 3"
    assert difference({"a": 1.0}, [1.0]) == "the result should be a dict with keys ['a'], got list"
    assert difference(1 + 2j, 1 + 3j) == "the result should be (1+2j), got (1+3j)"
    assert difference(1 + 2j, 1 + 2j) is None
    assert difference(t, [1.0, 2.0]) == (
        "the result should be a torch.Tensor of shape (2,), got list [1, 2]")
    # a value plain() could not keep, and a module where a tensor was expected
    assert difference(t, {"unsupported": "generator"}) == (
        "the result should be a torch.Tensor of shape (2,), got a generator")
    assert difference(t, {"module": "Linear", "state": {}}).startswith(
        "the result should be a torch.Tensor of shape (2,), got dict")


def test_parts_of_a_result_are_named_by_their_key_and_position():
    t = torch.tensor([1.0, 2.0])
    assert difference({"output": t}, {"output": t * 2}).startswith("the output differs in 2 of 2")
    assert difference([{"mean": 1.0}], [{"mean": 2.0}]) == (
        "item 0 of the result['mean'] should be 1, got 2")


def test_for_bools_none_and_strings_the_type_is_part_of_the_answer():
    """A value that merely compares equal (here: mock.ANY) is not the answer."""
    from unittest import mock

    for expected in (True, None, "relu"):
        assert difference(expected, expected) is None
        assert difference(expected, mock.ANY) is not None, expected


def test_the_count_of_wrong_values_leaves_out_those_exactly_at_the_tolerance():
    """What differs is what assert_close rejects: |got - expected| > atol + rtol |expected|."""
    exact = difference(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]), 0.0, 0.0)
    assert exact.startswith("the result differs in 1 of 3 values; first at index 1: expected 2")
    at_edge = difference(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 2.0, 1.0]), 0.0, 0.5)
    assert at_edge.startswith("the result differs in 1 of 3 values; first at index 1: expected 0")


def _nest(value, levels):
    for _ in range(levels):
        value = [value]
    return value


def test_plain_keeps_values_six_containers_deep_and_cuts_deeper_ones():
    from course_lib.grading.compare import plain

    assert plain(_nest(1.0, 6)) == _nest(1.0, 6)
    assert plain(_nest(1.0, 7)) == _nest({"unsupported": "nested too deeply"}, 7)
    assert plain(_nest({"a": 1.0}, 6)) == _nest({"a": {"unsupported": "nested too deeply"}}, 6)
    # a module's parameters are one level below the module
    assert plain(_nest(nn.Linear(2, 1), 6)) == _nest(
        {"module": "Linear", "state": {"unsupported": "nested too deeply"}}, 6)


def test_plain_names_a_module_and_an_unsupported_value_by_their_type():
    from course_lib.grading.compare import plain

    layer = nn.Linear(2, 1)
    kept = plain(layer)
    assert kept["module"] == "Linear" and sorted(kept["state"]) == ["bias", "weight"]
    assert torch.equal(kept["state"]["weight"], layer.weight.detach())
    assert plain(iter([1])) == {"unsupported": "list_iterator"}
    assert plain((v for v in [1])) == {"unsupported": "generator"}


def test_an_answer_of_the_wrong_kind_is_told_what_it_returned():
    result = cl.grading.grade_solution("activations.step", lambda x: (v for v in x))
    assert not result.passed and "should be a torch.Tensor of shape" in result.message
    assert "got a generator" in result.message
    result = cl.grading.grade_solution("activations.step", lambda x: nn.Identity())
    assert not result.passed and "should be a torch.Tensor of shape" in result.message


def _double(x):
    return 2 * x


def _triple(x):
    return 3 * x


TRIPLE_HINT = "You multiplied by three: doubling is times two."


@pytest.fixture
def doubling():
    """An exercise of our own (not registered): double a tensor; the known mistake triples it.
    Its reference outcomes are computed fresh, not taken from the cache of the registered ones."""
    from course_lib.grading.exercise import Case, Exercise, Mutant

    from course_lib.grading import checker as check

    exercise = Exercise(
        id="faults.double", reference=_double,
        cases=lambda: [Case((torch.tensor([1.0, 2.0]),)), Case((torch.tensor([-3.0, 0.5]),))],
        mutants=[Mutant(_triple, TRIPLE_HINT)], rtol=1e-3, atol=1e-6, timeout=2.5,
    )
    yield exercise
    check._reference_cache.pop(exercise.id, None)
    for key in [k for k in check._mutant_cache if k[0] == exercise.id]:
        del check._mutant_cache[key]


def test_the_reference_outcomes_of_an_exercise_are_computed_once(doubling):
    from course_lib.grading.checker import reference_outcomes

    cases, outcomes = reference_outcomes(doubling)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    for case, outcome in zip(cases, outcomes):
        assert torch.equal(outcome.value, 2 * case.args[0])
    assert reference_outcomes(doubling)[1] is outcomes
    result = judge(doubling, outcomes)
    assert (result.id, result.passed, result.num_cases, result.num_failed) == (
        "faults.double", True, 2, 0)


def test_the_reference_gets_60_s_per_case_and_an_answer_the_exercise_s_timeout(doubling,
                                                                             monkeypatch):
    from contextlib import contextmanager

    from course_lib.grading import checker as check
    limits = []

    @contextmanager
    def recorded(seconds):
        limits.append(seconds)
        yield

    monkeypatch.setattr(check, "_time_limit", recorded)
    cases, _ = check.reference_outcomes(doubling)
    assert limits == [60, 60]
    check.collect(doubling, _triple, cases)
    assert limits[2:] == [2.5, 2.5]


def test_an_answer_within_tolerance_of_a_known_mistake_gets_that_mistake_s_hint(doubling):
    from course_lib.grading.checker import collect, reference_outcomes

    cases, _ = reference_outcomes(doubling)
    near = collect(doubling, lambda x: 3 * x * (1 + 3e-4), cases)  # 0.3 rtol from tripling
    result = judge(doubling, near)
    assert not result.passed and result.hint == TRIPLE_HINT
    result = judge(doubling, collect(doubling, _triple, cases))
    assert result.hint == TRIPLE_HINT
    # the most telling case: 3x is off by 499.92 tolerances at -3, 499.88 at 2 (x = 1, 2)
    assert "  got:      tensor([-9.0, 1.5])" in result.message.splitlines()


def test_a_timed_out_case_is_reported_as_such_and_the_cases_after_it_as_not_run(doubling):
    error = "your function did not return within 2.5 s (an endless loop?)"
    result = judge(doubling, [Outcome("timeout", error=error)])
    assert not result.passed and (result.num_cases, result.num_failed) == (2, 2)
    assert f"  problem:  {error}" in result.message.splitlines()


def test_an_untouched_stub_is_reported_under_the_exercise_s_id(doubling):
    stub = Outcome("not_implemented", error="NotImplementedError")
    result = judge(doubling, [stub, stub])
    assert (result.id, result.passed, result.num_failed) == ("faults.double", False, 2)
    assert result.message.startswith("✘ faults.double: not implemented yet")


def _multiply(x, y):
    return x * y


def test_a_gradient_note_from_another_case_names_that_case_shortened_to_80_characters():
    from course_lib.grading.exercise import Case, Exercise, call_with_grad

    from course_lib.grading import checker as check

    long_x, long_y = torch.linspace(-1, 1, 20), torch.linspace(1, 2, 20)
    cases = [Case((torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))), Case((long_x, long_y))]
    exercise = Exercise(id="faults.multiply", reference=_multiply, cases=lambda: cases,
                        run=call_with_grad)

    def scaled(value, output, grad_x):
        return {k: v * (output if k == "output" else grad_x if k.endswith("1") else 1.0)
                for k, v in value.items()}

    try:
        _, expected = check.reference_outcomes(exercise)
        first = scaled(expected[0].value, 2.0, 2.0)  # everything twice too large: the most telling
        # case 2: the output barely off, grad x 100 times more
        second = scaled(expected[1].value, 1.0001, 1.01)
        result = judge(exercise, [Outcome("ok", first), Outcome("ok", second)])
        # case 2's output right, only its grad x off: no ".detach()" note, since case 1's output
        # is wrong (issue 29: the gradient note only when the values agree)
        only_grad = scaled(expected[1].value, 1.0, 1.01)
        mixed = judge(exercise, [Outcome("ok", first), Outcome("ok", only_grad)])
        # every output right, a gradient off: the note, on the shown case
        right = judge(exercise, [Outcome("ok", scaled(expected[0].value, 1.0, 1.5)),
                                 Outcome("ok", only_grad)])
    finally:
        check._reference_cache.pop(exercise.id, None)
    described = cases[1].describe(80)
    assert len(cases[1].describe()) > 80 and len(described) == 80
    text = " ".join(result.message.split())
    assert f"note: in the case {described}, grad x differs 100 times more than the output" in text
    text = " ".join(mixed.message.split())
    assert "note:" not in text and "input: tensor([1.0, 2.0])" in text
    text = " ".join(right.message.split())
    assert "input: tensor([1.0, 2.0])" in text
    assert "note: the output is right but grad x is not" in text and ".detach()" in text


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def _step_raising_unprintable(x):
    raise _Unprintable()


def test_grade_solution_always_returns_a_verdict_of_zero_cases_when_it_cannot_check():
    from course_lib.grading import grade_solution

    unknown = grade_solution("activations.stepp", lambda x: x)
    assert (unknown.id, unknown.passed, unknown.num_cases, unknown.num_failed) == (
        "activations.stepp", False, 0, 0)
    for exercise_id, what in (("activations.step", "function"), ("batchnorm.BatchNorm1d", "class")):
        result = grade_solution(exercise_id, 3)
        assert (result.id, result.passed, result.num_cases, result.num_failed) == (
            exercise_id, False, 0, 0)
        assert f"expected a {what} (pass it without calling it" in result.message
    # an answer whose exception cannot even be printed breaks the feedback, not the notebook
    broken = grade_solution("activations.step", _step_raising_unprintable)
    assert (broken.id, broken.passed, broken.num_cases, broken.num_failed) == (
        "activations.step", False, 0, 0)
    assert broken.message.startswith(
        "✘ activations.step: could not be checked (RuntimeError: no text")


# ---- the second run of `make mutate`: training, data, layers, autoencoders ---------------------


def _counting_sgd(steps: list, made: list):
    """An optimizer factory for `Run(optimizer=...)` that counts the steps it takes."""
    def make(params, lr):
        optimizer = torch.optim.SGD(params, lr=lr)
        optimizer.register_step_post_hook(lambda *_: steps.append(1))
        made.append(optimizer)
        return optimizer
    return make


def test_train_takes_the_runs_own_optimizer_batch_size_and_schedule():
    data = cl.make_moons(200)  # 120 training examples
    assert len(data.X_train) == 120
    steps, made = [], []
    halve = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa: E731
    run = cl.Run(lambda: nn.Linear(2, 2), lr=0.4, num_epochs=2, batch_size=50,
                 optimizer=_counting_sgd(steps, made), schedule=halve)
    cl.train(run, data)
    assert len(steps) == 2 * 3  # batches of 50, 50 and 20 in each epoch
    assert made[0].param_groups[0]["lr"] == pytest.approx(0.4 * 0.5**2)


def test_fit_takes_batches_of_64_unless_told_otherwise():
    X, y = _classification(130)  # 64 + 64 + 2
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=1)
    assert len(steps) == 3


def test_train_without_validation_rows_logs_no_validation():
    data = cl.make_moons(200)
    empty = cl.Split(data.X_train, data.y_train, data.X_val[:0], data.y_val[:0], data.X_test,
                     data.y_test)
    result = cl.train(cl.Run(lambda: nn.Linear(2, 2), num_epochs=1), empty)
    assert "loss" in result.history and "val_loss" not in result.history


def test_train_seeds_wants_a_list_of_seeds():
    run = cl.Run(lambda: nn.Linear(2, 2), num_epochs=1)
    for bad in (3, []):
        with pytest.raises((TypeError, ValueError), match="seeds"):
            cl.train_seeds(run, cl.make_moons(100), bad)


def test_a_parameter_without_a_gradient_in_a_batch_is_not_moved_by_that_step():
    class Gate(nn.Module):  # `extra` takes part only in full batches
        def __init__(self):
            super().__init__()
            self.linear, self.extra = nn.Linear(5, 3), nn.Parameter(torch.zeros(3))

        def forward(self, x):
            out = self.linear(x)
            return out + self.extra if len(x) == 10 else out

    torch.manual_seed(0)
    X, y = _classification(23)  # batches of 10, 10 and 3
    model = Gate()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    values = []
    optimizer.register_step_post_hook(lambda *_: values.append(model.extra.detach().clone()))
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=1,
           batch_size=10)
    assert not torch.equal(values[0], values[1])  # moved by the full batches
    assert torch.equal(values[1], values[2])  # left alone by the batch it took no part in


def test_metrics_of_an_autoencoder_and_of_a_vae_see_the_outputs_and_the_inputs():
    torch.manual_seed(0)
    X = torch.rand(40, 6)
    seen = []

    def error(output, target):
        x_hat = output[0] if isinstance(output, tuple) else output
        seen.append(target)
        return float(((x_hat - target) ** 2).mean())

    for model, loss_fn in [
        (cl.fully_connected_autoencoder([6, 2]), cl.reconstruction_loss),
        (cl.fully_connected_vae([6, 2]), cl.elbo_loss),
    ]:
        seen.clear()
        h = _frozen_fit(model, X, None, loss_fn=loss_fn, num_epochs=1, batch_size=16,
                        metrics={"error": error})
        assert "error" in h and torch.equal(torch.sort(seen[0], dim=0).values,
                                            torch.sort(X, dim=0).values)


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


def test_batch_norm_counts_batches_in_an_integer_buffer_like_torch():
    from course_lib.layers import BatchNorm1d

    ours, theirs = BatchNorm1d(3), nn.BatchNorm1d(3)
    assert ours.num_batches_tracked.dtype == theirs.num_batches_tracked.dtype == torch.long
    with pytest.raises(ValueError, match="^eps"):
        BatchNorm1d(3, eps=0.0)


def test_autoencoder_checks_name_the_argument_and_the_shape_expected():
    from course_lib.autoencoders import gaussian_kl, sparsity_kl

    with pytest.raises(ValueError, match=r"^rho_hat must have shape 1 dimensions"):
        sparsity_kl(0.05, torch.rand(2, 3))
    with pytest.raises(TypeError, match="^mu must be"):
        gaussian_kl("mu", torch.zeros(2, 2))
    for build in (cl.fully_connected_autoencoder, cl.fully_connected_vae):
        assert isinstance(build([4, 1]), nn.Module)  # a code of one number is allowed
        for bad in ([4, 0], [4, -2]):
            with pytest.raises(ValueError):
                build(bad)


def test_a_contractive_term_uses_the_path_it_was_given():
    from course_lib.autoencoders import contractive_term

    model = cl.fully_connected_autoencoder([6, 3])  # a ReLU-free linear code: no analytic path
    penalty = contractive_term(1.0, path="analytic")
    with pytest.raises(ValueError, match="analytic path needs"):
        penalty(model, torch.rand(4, 6))
    with pytest.raises(ValueError, match="path"):
        contractive_term(1.0, path="exact")  # refused when written, not at the first batch
