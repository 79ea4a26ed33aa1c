"""Self-test of the exercises of chapters 5 (optimization) and 6 (dropout), and their references
against PyTorch."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.exercises import dropout as ex_dropout
from course_lib.exercises import optimization as ex_opt
from course_lib.grading import exercises_of, grade_solution, self_test
from course_lib.layers import Dropout


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("chapter", ["optimization", "dropout"])
def test_self_test_passes(chapter):
    exercises = exercises_of(chapter)
    assert len(exercises) >= 4
    assert self_test([e.id for e in exercises]) == []


def test_untouched_stub_reports_not_implemented():
    def momentum_step(w, v, g, lr, beta):
        raise NotImplementedError

    result = grade_solution("optimization.momentum_step", momentum_step)
    assert not result.passed and "not implemented" in result.message


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step_matches_torch_sgd_over_several_steps(nesterov):
    torch.manual_seed(0)
    w = torch.randn(6, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov)
    mine, v = w.detach().clone(), torch.zeros(6)
    inside, u = w.detach().clone(), torch.zeros(6)
    target = torch.randn(6)
    for _ in range(5):
        optimizer.zero_grad()
        (w - target).pow(2).sum().backward()
        optimizer.step()
        if nesterov:
            continue
        mine, v = ex_opt.momentum_step(mine, v, 2 * (mine - target), 0.1, 0.9)
        inside, u = ex_opt.momentum_step_lr_inside(inside, u, 2 * (inside - target), 0.1, 0.9)
        torch.testing.assert_close(mine, w.detach())
        torch.testing.assert_close(inside, w.detach())  # same path for a constant lr
        torch.testing.assert_close(u, 0.1 * v)  # the velocities differ by the factor lr


def test_cosine_with_warmup_matches_torch_schedulers():
    total, warmup, base = 20, 5, 0.3
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, total_iters=warmup - 1),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup)], milestones=[warmup])
    for step in range(total):
        assert ex_opt.cosine_with_warmup(step, total, warmup, base) == pytest.approx(
            opt.param_groups[0]["lr"], abs=1e-9), step
        opt.step()
        scheduler.step()


def test_soft_threshold_is_the_proximal_step_of_l1():
    # prox of t|w| at w: argmin_u 1/2 (u - w)^2 + t |u|, checked on a fine grid
    u = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    for w, t in [(1.2, 0.5), (-0.3, 0.5), (0.0, 0.1), (-2.0, 0.7)]:
        best = u[(0.5 * (u - w) ** 2 + t * u.abs()).argmin()].item()
        assert ex_opt.soft_threshold(torch.tensor(w), t).item() == pytest.approx(best, abs=1e-3)


def test_dropout_references_match_the_course_layer_and_pytorch():
    torch.manual_seed(0)
    x = torch.randn(50, 20)
    p = 0.3
    torch.manual_seed(5)
    y = nn.Dropout(p)(x)
    mask = y != 0
    torch.testing.assert_close(ex_dropout.dropout_train(x, mask, p), y)
    torch.manual_seed(5)
    torch.testing.assert_close(Dropout(p)(x), y)
    assert torch.equal(ex_dropout.dropout(x, mask, p, training=False), x)
    # classic dropout = inverted dropout times (1 - p), in both modes
    for training in (True, False):
        torch.testing.assert_close(ex_dropout.dropout_classic(x, mask, p, training),
                                   (1 - p) * ex_dropout.dropout(x, mask, p, training))


def test_mc_average_rows_are_distributions_and_converge_to_the_ensemble():
    net = ex_dropout._TinyNet(0, 3, 4, 3, 0.5)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    # all 2^4 masks of the hidden layer, the same for every example: the exact ensemble
    masks = [torch.tensor([(i >> j) & 1 for j in range(4)], dtype=torch.bool).expand(5, 4)
             for i in range(16)]
    exact = ex_dropout.mc_average(net, x, masks)
    torch.testing.assert_close(exact.sum(dim=1), torch.ones(5))
    g = torch.Generator().manual_seed(2)
    samples = [torch.rand(5, 4, generator=g) >= 0.5 for _ in range(4000)]
    sampled = ex_dropout.mc_average(net, x, samples)
    assert (sampled - exact).abs().max() < 0.03
    assert math.isclose(sampled.sum().item(), 5, rel_tol=1e-5)
