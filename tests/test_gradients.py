"""Tests of course_lib.gradients (against PyTorch and closed forms) and of the chapter 3
exercises."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import course_lib as cl
from course_lib.exercises.gradients import (
    clip_by_global_norm,
    init_std,
    sigmoid_chain_derivative,
    weight_gradient_norms,
)
from course_lib.gradients import (
    ClipGradNorm,
    ResidualMLP,
    UpdateNormRecorder,
    deep_mlp,
    first_last_ratio,
    layer_gradient_norms,
    linear_weight_names,
    recorded_ratios,
)
from course_lib.grading import exercises_of, self_test


def _data(n: int = 32, d: int = 12, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


# ---- deep_mlp ---------------------------------------------------------------------------------


def test_deep_mlp_has_depth_hidden_layers_of_the_given_width():
    model = deep_mlp(12, 4, depth=5, width=16, activation=nn.Tanh)
    linears = model.linear_layers
    assert len(linears) == 6  # 5 hidden layers and the output layer
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 16)] + [(16, 16)] * 4 + [
        (16, 4)
    ]
    assert sum(isinstance(m, nn.Tanh) for m in model) == 5


@pytest.mark.parametrize(
    "scheme, variance",
    [
        ("he", lambda i, o: 2 / i),
        ("glorot", lambda i, o: 2 / (i + o)),
        ("default", lambda i, o: 1 / (3 * i)),
    ],
)
def test_deep_mlp_initializes_with_the_scheme_variance(scheme, variance):
    torch.manual_seed(0)
    model = deep_mlp(400, 10, depth=2, width=400, scheme=scheme)
    w = model.linear_layers[1].weight  # 400 x 400 = 160,000 draws
    assert_close(w.var().item(), variance(400, 400), rtol=0.02, atol=0.0)


def test_deep_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        deep_mlp(4, 2, depth=0)
    with pytest.raises(ValueError, match="width"):
        deep_mlp(4, 2, width=0)
    with pytest.raises(ValueError, match="scheme"):
        deep_mlp(4, 2, scheme="lecun")


# ---- layer_gradient_norms, first_last_ratio ---------------------------------------------------


def test_layer_gradient_norms_match_a_manual_backward_pass():
    X, y = _data()
    torch.manual_seed(1)
    model = deep_mlp(12, 4, depth=3, width=8, activation=nn.Sigmoid)
    norms = layer_gradient_norms(model, X, y)
    assert (
        list(norms)
        == linear_weight_names(model)
        == ["1.weight", "3.weight", "5.weight", "7.weight"]
    )
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    expected = [m.weight.grad.norm().item() for m in model.linear_layers]
    assert_close(list(norms.values()), expected, rtol=1e-6, atol=0.0)
    again = layer_gradient_norms(model, X, y)  # old gradients are cleared, not accumulated
    assert_close(list(again.values()), expected, rtol=1e-6, atol=0.0)


class _Step(nn.Module):
    def forward(self, x):
        return (x >= 0).to(x.dtype)  # a comparison: autograd's graph is cut here


def test_layer_gradient_norms_reports_layers_without_a_gradient_as_none():
    # bug 2 of issue 9: a bare KeyError '1.weight' for chapter 2's step network
    X, y = _data()
    torch.manual_seed(0)
    step = cl.MLP([12, 8, 8, 4], activation=_Step)
    norms = layer_gradient_norms(step, X, y)
    assert list(norms) == ["1.weight", "3.weight", "5.weight"]
    assert norms["1.weight"] is None and norms["3.weight"] is None
    step.zero_grad()
    F.cross_entropy(step(X), y).backward()
    assert_close(norms["5.weight"], step[5].weight.grad.norm().item(), rtol=1e-6, atol=0.0)
    with pytest.raises(ValueError, match="no gradient"):
        first_last_ratio(norms)
    cut = nn.Sequential(nn.Linear(12, 4), _Step())  # no parameter reaches the loss at all
    assert layer_gradient_norms(cut, X, y.float()[:, None].expand(-1, 4), F.mse_loss) == {
        "0.weight": None
    }
    torch.manual_seed(0)
    sign = cl.MLP([12, 8, 4], activation=lambda: _SignStep())  # reached by autograd, derivative 0
    assert layer_gradient_norms(sign, X, y)["1.weight"] == 0.0


class _SignStep(nn.Module):
    def forward(self, x):
        return (torch.sign(x) + 1) / 2


def test_first_last_ratio_divides_first_by_last():
    assert first_last_ratio({"a": 1e-6, "b": 5.0, "c": 2.0}) == pytest.approx(5e-7)
    with pytest.raises(ValueError):
        first_last_ratio({"a": 1.0})
    with pytest.raises(ValueError):
        first_last_ratio({"a": 1.0, "b": 0.0})


def test_gradient_helpers_reject_bad_input():
    with pytest.raises(TypeError):
        linear_weight_names("not a model")
    with pytest.raises(ValueError, match="no nn.Linear"):
        linear_weight_names(nn.Sequential(nn.ReLU()))
    model = deep_mlp(12, 4, depth=3)
    X, y = _data()
    with pytest.raises(ValueError):
        layer_gradient_norms(model, X, y[:5])
    with pytest.raises(TypeError):
        layer_gradient_norms(model, X.tolist(), y)


def test_sigmoid_gradients_vanish_and_he_relu_gradients_do_not():
    """The chapter's headline, in miniature: first/last ratio by activation and initialization."""
    X, y = _data(n=64, d=16, k=4)
    torch.manual_seed(0)
    sigmoid = first_last_ratio(
        layer_gradient_norms(deep_mlp(16, 4, depth=12, width=32, activation=nn.Sigmoid), X, y)
    )
    torch.manual_seed(0)
    relu_he = first_last_ratio(
        layer_gradient_norms(deep_mlp(16, 4, depth=12, width=32, scheme="he"), X, y)
    )
    assert sigmoid < 1e-5 and 0.1 < relu_he < 10


# ---- ResidualMLP ------------------------------------------------------------------------------


def test_residual_mlp_shapes_and_skip_connections():
    torch.manual_seed(0)
    model = ResidualMLP(12, 4, num_blocks=5, width=8)
    X, _ = _data()
    assert model(X).shape == (32, 4)
    assert len(linear_weight_names(model)) == 7
    with torch.no_grad():  # with zero branches every block is the identity
        for block in model.blocks:
            block[1].weight.zero_()
            block[1].bias.zero_()
        expected = model.output(model.input(X))
    assert_close(model(X), expected)
    with pytest.raises(ValueError, match="num_blocks"):
        ResidualMLP(12, 4, num_blocks=0)


def test_residual_connections_keep_deep_sigmoid_gradients_alive():
    X, y = _data(n=64, d=16, k=4)
    torch.manual_seed(0)
    ratio = first_last_ratio(
        layer_gradient_norms(ResidualMLP(16, 4, num_blocks=18, activation=nn.Sigmoid), X, y)
    )
    assert ratio > 1e-2


# ---- ClipGradNorm, UpdateNormRecorder ---------------------------------------------------------


def test_clip_callback_bounds_the_sgd_update_by_lr_times_max_norm():
    X, y = _data(n=64)
    torch.manual_seed(0)
    model = deep_mlp(12, 4, depth=8, width=16, activation=nn.Identity, scheme="normal", gain=3.0)
    clip, updates = ClipGradNorm(0.5), UpdateNormRecorder()
    lr = 0.01
    history = cl.fit(
        model,
        X,
        y,
        loss_fn=F.cross_entropy,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        num_epochs=3,
        batch_size=16,
        callbacks=[clip, updates],
    )
    assert not history.diverged
    assert len(clip.norms) == 12 and len(updates.norms) == 11
    assert max(clip.norms) > 100  # the gradients explode ...
    assert max(updates.norms) <= lr * 0.5 * (
        1 + 1e-4
    )  # ... but no step is longer than lr * max_norm
    assert_close(updates.norms[0], lr * 0.5, rtol=1e-3, atol=0.0)


def test_clip_callback_matches_clip_grad_norm_and_rejects_bad_max_norm():
    torch.manual_seed(0)
    a, b = deep_mlp(12, 4, depth=3), deep_mlp(12, 4, depth=3)
    b.load_state_dict(a.state_dict())
    X, y = _data()
    for m in (a, b):
        F.cross_entropy(m(X), y).backward()
    ClipGradNorm(0.1).after_backward(a, 0)
    total = torch.nn.utils.clip_grad_norm_(b.parameters(), 0.1)
    for p, q in zip(a.parameters(), b.parameters()):
        assert_close(p.grad, q.grad)
    assert total > 0.1
    for bad in (0, -1.0, "1", True):
        with pytest.raises(ValueError):
            ClipGradNorm(bad)


def test_update_norm_recorder_measures_lr_times_gradient_norm_for_plain_sgd():
    torch.manual_seed(0)
    model = deep_mlp(12, 4, depth=3, width=8)
    X, y = _data(n=16)
    recorder, lr = UpdateNormRecorder(), 0.1
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    grads = []
    for step in range(3):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        norms = torch.stack([p.grad.norm() for p in model.parameters()])  # get_total_norm: 2.6+
        grads.append(norms.norm().item())
        recorder.after_backward(model, step)
        opt.step()
    assert_close(recorder.norms, [lr * g for g in grads[:2]], rtol=1e-4, atol=0.0)


# ---- the exercises' references against PyTorch and closed forms -------------------------------


def test_clip_by_global_norm_matches_torch_clip_grad_norm():
    g = torch.Generator().manual_seed(0)
    for max_norm, scale in [(1.0, 10.0), (5.0, 10.0), (1.0, 0.01)]:
        grads = [scale * torch.randn(4, 3, generator=g), scale * torch.randn(7, generator=g)]
        params = [torch.zeros_like(t, requires_grad=True) for t in grads]
        for p, t in zip(params, grads):
            p.grad = t.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        for p, clipped in zip(params, clip_by_global_norm(grads, max_norm)):
            assert_close(clipped, p.grad)
    assert_close(
        clip_by_global_norm([torch.tensor([3.0, 4.0])], 1.0)[0],
        torch.tensor([0.6, 0.8]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_sigmoid_chain_derivative_matches_autograd_and_the_quarter_bound():
    x = torch.linspace(-5, 5, 21, dtype=torch.float64, requires_grad=True)
    for depth in (1, 3, 10):
        a = x
        for _ in range(depth):
            a = torch.sigmoid(a)
        (expected,) = torch.autograd.grad(a.sum(), x)
        got = sigmoid_chain_derivative(x.detach(), depth)
        assert_close(got, expected, rtol=1e-10, atol=1e-15)
        assert (got <= 0.25**depth).all()
    assert 0.25**10 == pytest.approx(9.5367e-7, rel=1e-4)


def test_init_std_matches_torch_init():
    torch.manual_seed(0)
    w = torch.empty(300, 500)  # fan_out 300, fan_in 500
    nn.init.xavier_normal_(w)
    assert_close(w.std().item(), init_std("glorot", 500, 300), rtol=0.01, atol=0.0)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert_close(w.std().item(), init_std("he", 500, 300), rtol=0.01, atol=0.0)
    assert_close(
        nn.Linear(500, 300).weight.std().item(), init_std("default", 500, 300), rtol=0.01, atol=0.0
    )
    with pytest.raises(ValueError):
        init_std("lecun", 1, 1)


def test_weight_gradient_norms_reference_matches_the_library():
    X, y = _data()
    torch.manual_seed(0)
    model = deep_mlp(12, 4, depth=4, width=8, activation=nn.Tanh)
    assert_close(
        weight_gradient_norms(model, X, y).tolist(),
        list(layer_gradient_norms(model, X, y).values()),
        rtol=1e-6,
        atol=0.0,
    )


def test_chapter_3_exercises_pass_their_self_test():
    assert self_test([e.id for e in exercises_of("gradients")]) == []
    assert len(exercises_of("gradients")) >= 4


# ---- recorded_ratios --------------------------------------------------------------------------


def test_recorded_ratios_divide_the_first_by_the_last_weight_norm_at_every_step():
    X, y = _data(n=64)
    torch.manual_seed(0)
    model = deep_mlp(12, 4, depth=3, width=8, activation=nn.Tanh)
    recorder = cl.GradientNormRecorder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=2,
           batch_size=16, callbacks=[recorder])
    first, last = recorder.norms["1.weight"], recorder.norms["7.weight"]  # 4 Linear layers
    ratios = recorded_ratios(recorder, model)
    assert len(ratios) == len(recorder.steps) == 8
    assert_close(torch.tensor(ratios), torch.tensor(first) / torch.tensor(last))


def test_recorded_ratios_reject_a_recorder_of_another_model():
    with pytest.raises(TypeError, match="GradientNormRecorder"):
        recorded_ratios([1.0], deep_mlp(4, 2, depth=1))
    with pytest.raises(ValueError, match="callbacks"):
        recorded_ratios(cl.GradientNormRecorder(), deep_mlp(4, 2, depth=1))


# ---- mean_cosine (course_lib.initialization, chapter 3) ---------------------------------------


def test_mean_cosine_matches_the_pairwise_definition():
    from course_lib.initialization import forward_profile, mean_cosine

    g = torch.Generator().manual_seed(0)
    h = torch.relu(torch.randn(40, 7, generator=g) + 0.3)
    h[3] = 0.0  # a zero row: similarity 0 with every other row
    u = h.double() / h.double().norm(dim=1, keepdim=True).clamp_min(1e-300)
    pairwise = u @ u.T
    off_diagonal = pairwise[~torch.eye(40, dtype=torch.bool)]
    assert_close(mean_cosine(h), off_diagonal.mean().item(), rtol=1e-9, atol=1e-12)
    assert_close(mean_cosine(torch.ones(5, 3)), 1.0)
    torch.manual_seed(0)
    profile = forward_profile(deep_mlp(7, 3, depth=2, width=5), h)
    assert all(-1 <= layer.cosine <= 1 for layer in profile)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_cosine(torch.ones(1, 3))
    with pytest.raises(TypeError):
        mean_cosine([[1.0, 2.0]])
