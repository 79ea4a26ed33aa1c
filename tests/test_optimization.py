"""Tests of course_lib.optimization (chapter 5): range test, schedules, gradient noise, paths."""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from course_lib.optimization import (
    gradient_noise,
    lr_range_test,
    plot_schedules,
    plot_trajectories,
    schedule_values,
    trajectory,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one CPU thread is much faster than several on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n: int = 256, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return X, y


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))


def test_range_test_learning_rates_grow_geometrically_and_the_loss_blows_up():
    X, y = _data()
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer,
                           min_lr=1e-4, max_lr=1e4, num_steps=200)
    lrs = torch.tensor(result.lrs, dtype=torch.float64)
    ratios = lrs[1:] / lrs[:-1]
    assert_close(ratios, torch.full_like(ratios, (1e8) ** (1 / 199)), rtol=1e-9, atol=0)
    assert result.lrs[0] == pytest.approx(1e-4)
    assert result.diverged_at is not None and len(result.lrs) < 200  # stopped at the blow-up
    assert result.diverged_at == result.lrs[-1]
    assert result.suggestion == pytest.approx(result.best_lr / 10)
    assert result.suggestion < result.best_lr < result.diverged_at
    assert len(result.losses) == len(result.smoothed) == len(result.lrs)
    # the lowest smoothed loss is below the first: the loss did decrease on the way
    assert min(result.smoothed) < result.smoothed[0]


def test_range_test_restores_model_and_optimizer_and_reaches_max_lr_when_nothing_blows_up():
    X, y = _data()
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer,
                           min_lr=1e-6, max_lr=1e-3, num_steps=30)
    assert result.diverged_at is None and len(result.lrs) == 30
    assert result.lrs[-1] == pytest.approx(1e-3)
    for p, q in zip(before, model.parameters()):
        assert torch.equal(p, q)
    assert optimizer.param_groups[0]["lr"] == 0.1 and not optimizer.state


def test_range_test_smoothing_is_a_bias_corrected_moving_average():
    X, y = _data()
    model = _model()
    result = lr_range_test(model, X, y, loss_fn=F.cross_entropy,
                           optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           min_lr=1e-5, max_lr=1e-4, num_steps=10, smoothing=0.3)
    average = 0.0
    for i, (loss, smooth) in enumerate(zip(result.losses, result.smoothed)):
        average = 0.7 * average + 0.3 * loss
        assert smooth == pytest.approx(average / (1 - 0.7 ** (i + 1)))
    assert result.smoothed[0] == pytest.approx(result.losses[0])


def test_range_test_plot_and_bad_arguments():
    X, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer=opt, num_steps=20)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="min_lr must be below max_lr"):
        lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer=opt, min_lr=1, max_lr=0.1)
    with pytest.raises(ValueError, match="num_steps"):
        lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer=opt, num_steps=0)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_range_test(model, X, y, loss_fn=F.cross_entropy, optimizer="sgd")
    with pytest.raises(ValueError, match="rows"):
        lr_range_test(model, X, y[:10], loss_fn=F.cross_entropy, optimizer=opt)


def test_schedule_values_match_the_closed_forms():
    cosine = schedule_values(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10), 11, 0.5)
    expected = [0.5 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    assert cosine == pytest.approx(expected, abs=1e-12)
    step = schedule_values(lambda opt: torch.optim.lr_scheduler.StepLR(opt, 3, gamma=0.1), 7, 1.0)
    assert step == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    warm = schedule_values(
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3), 5, 1.0
    )
    assert warm == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_plot_schedules_draws_one_line_per_schedule_and_checks_its_input():
    ax = plot_schedules({"constant": lambda opt: torch.optim.lr_scheduler.ConstantLR(opt, 1.0),
                         "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2)}, 6)
    assert len(ax.get_lines()) == 2
    with pytest.raises(TypeError, match="mapping"):
        plot_schedules([], 5)
    with pytest.raises(TypeError, match="callable"):
        schedule_values("cosine", 5)


def test_gradient_noise_matches_the_sampling_without_replacement_formula():
    X, y = _data(n=64)
    model = nn.Linear(5, 2)
    # per-example gradients by brute force: s^2 = mean ||g_i - g||^2
    def grad(idx):
        model.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()]).clone()

    full = grad(torch.arange(64))
    s2 = torch.stack([(grad(torch.tensor([i])) - full).pow(2).sum() for i in range(64)]).mean()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    noise = gradient_noise(model, X, y, loss_fn=F.cross_entropy, batch_sizes=[1, 8, 64],
                           num_batches=400)
    for b, value in noise.items():
        expected = (64 - b) / 63 * s2.item() / b
        assert value == pytest.approx(expected, rel=0.2, abs=1e-6), b
    assert noise[64] < 1e-10  # the whole data set is the full batch
    assert all(p.grad is None for p in model.parameters())


def test_gradient_noise_leaves_the_model_unchanged_and_checks_batch_sizes():
    X, y = _data()
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    noise = gradient_noise(model, X, y, loss_fn=F.cross_entropy, batch_sizes=[2, 32], num_batches=5)
    assert set(noise) == {2, 32} and noise[2] > noise[32]
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="larger than the data"):
        gradient_noise(model, X, y, loss_fn=F.cross_entropy, batch_sizes=[1000])
    with pytest.raises(ValueError, match="sequence"):
        gradient_noise(model, X, y, loss_fn=F.cross_entropy, batch_sizes=8)


def _quadratic(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (10 * w[..., 0] ** 2 + w[..., 1] ** 2)


def test_trajectory_of_gradient_descent_matches_the_closed_form():
    path = trajectory(_quadratic, [1.0, 1.0], lambda p: torch.optim.SGD(p, lr=0.05), 20)
    assert path.shape == (21, 2)
    k = torch.arange(21, dtype=torch.float64)
    # gradient descent on a diagonal quadratic: w_k = (1 - lr * a)^k w_0 in each coordinate
    assert_close(path[:, 0], (1 - 0.05 * 10) ** k)
    assert_close(path[:, 1], (1 - 0.05 * 1) ** k)


def test_trajectory_with_momentum_matches_the_velocity_recursion():
    lr, beta = 0.01, 0.9
    path = trajectory(_quadratic, [1.0, -2.0],
                      lambda p: torch.optim.SGD(p, lr=lr, momentum=beta), 30)
    w, v = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for k in range(30):
        g = torch.tensor([10.0, 1.0], dtype=torch.float64) * w
        v = beta * v + g
        w = w - lr * v
        assert_close(path[k + 1], w)


def test_plot_trajectories_draws_contours_and_paths():
    path = trajectory(_quadratic, [1.0, 1.0], lambda p: torch.optim.SGD(p, lr=0.05), 5)
    ax = plot_trajectories(_quadratic, {"gd": path}, (-1.5, 1.5), (-1.5, 1.5), minimum=(0, 0))
    assert len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="flat"):
        trajectory(_quadratic, [[1.0, 1.0]], lambda p: torch.optim.SGD(p, lr=0.05), 5)


def test_a_plateau_schedule_has_no_values_in_advance_a_clear_error():
    with pytest.raises(ValueError, match="ReduceLROnPlateau schedule has no values"):
        schedule_values(lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt), 5)
