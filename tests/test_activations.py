"""Tests of course_lib.activations (against PyTorch and closed forms) and of chapter 2's
exercises.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.activations import ACTIVATIONS, compose, derivative, get_activation, plot_activation
from course_lib.grading import exercises_of, grade_solution, self_test

X = torch.linspace(-6, 6, 241, dtype=torch.float64)
PHI = torch.distributions.Normal(
    torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
)

CLOSED_FORMS = {  # f(x) and f'(x), written out independently of torch.nn.functional
    "sigmoid": (
        lambda x: 1 / (1 + torch.exp(-x)),
        lambda x: torch.exp(-x) / (1 + torch.exp(-x)) ** 2,
    ),
    "tanh": (
        lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
        lambda x: 1 - torch.tanh(x) ** 2,
    ),
    "relu": (lambda x: torch.where(x > 0, x, 0 * x), lambda x: (x > 0).double()),
    "leaky_relu": (
        lambda x: torch.where(x > 0, x, 0.01 * x),
        lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01)),
    ),
    "elu": (
        lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
        lambda x: torch.where(x > 0, 1.0, torch.exp(x)),
    ),
    "silu": (
        lambda x: x / (1 + torch.exp(-x)),
        lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))),
    ),
    "gelu": (lambda x: x * PHI.cdf(x), lambda x: PHI.cdf(x) + x * torch.exp(PHI.log_prob(x))),
    "softplus": (lambda x: torch.log1p(torch.exp(x)), lambda x: 1 / (1 + torch.exp(-x))),
}


def test_the_table_holds_the_eight_common_functions():
    assert set(ACTIVATIONS) == set(CLOSED_FORMS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_function_matches_closed_form_and_module(name):
    activation = get_activation(name)
    f, _ = CLOSED_FORMS[name]
    assert_close(activation(X), f(X), rtol=1e-12, atol=1e-12)
    assert_close(activation.module()(X), activation.fn(X), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_derivative_matches_closed_form(name):
    _, df = CLOSED_FORMS[name]
    x = X[X != 0]  # the kinks of ReLU, leaky ReLU and ELU are at 0
    assert_close(derivative(name, x), df(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_range_bounds_the_values(name):
    activation = get_activation(name)
    y = activation(torch.linspace(-30, 30, 60001, dtype=torch.float64))
    assert y.min() >= activation.low - 1e-12 and y.max() <= activation.high + 1e-12
    assert activation.bounded == (name in ("sigmoid", "tanh"))


def test_silu_and_gelu_minima():
    from scipy.optimize import minimize_scalar
    from scipy.special import lambertw

    assert get_activation("silu").low == pytest.approx(-lambertw(1 / math.e).real, abs=1e-15)
    for name in ("silu", "gelu"):
        f = CLOSED_FORMS[name][0]
        best = minimize_scalar(
            lambda t, f=f: f(torch.tensor(t, dtype=torch.float64)).item(),
            bounds=(-3, 0),
            method="bounded",
            options={"xatol": 1e-12},
        )
        assert get_activation(name).low == pytest.approx(best.fun, abs=1e-14)


def test_smoothness_is_measured_at_zero():
    """C0: the one-sided slopes at 0 (the only point where a formula switches) differ; C1: they
    agree but the one-sided second derivatives differ; smooth: both agree."""
    h = 1e-4
    for name, a in ACTIVATIONS.items():
        x = torch.tensor([-2 * h, -h, 0.0, h, 2 * h], dtype=torch.float64)
        f = a.fn(x)
        slope_left, slope_right = ((f[2] - f[1]) / h).item(), ((f[3] - f[2]) / h).item()
        curve_left = ((f[2] - 2 * f[1] + f[0]) / h**2).item()
        curve_right = ((f[4] - 2 * f[3] + f[2]) / h**2).item()
        first_jumps = abs(slope_right - slope_left) > 1e-2
        second_jumps = abs(curve_right - curve_left) > 1e-2
        measured = "C0" if first_jumps else "C1" if second_jumps else "smooth"
        assert measured == a.smoothness, name
    assert {n for n, a in ACTIVATIONS.items() if a.smoothness != "smooth"} == {
        "relu", "leaky_relu", "elu"}


def test_display_names_are_the_texts_spelling():
    assert get_activation("relu").display_name == "ReLU"
    assert get_activation("leaky_relu").display_name == "leaky ReLU"
    assert get_activation("sigmoid").display_name == "sigmoid"
    ax = plot_activation("gelu", depth=2)
    assert ax.get_title().startswith("GELU applied 2 times")
    plt.close(ax.figure)


def test_pytorch_derivative_at_zero_conventions():
    zero = torch.zeros(1, dtype=torch.float64)
    assert derivative("relu", zero).item() == 0.0
    assert derivative("leaky_relu", zero).item() == pytest.approx(0.01)
    assert derivative("sigmoid", zero).item() == pytest.approx(0.25, abs=1e-15)
    assert derivative("tanh", zero).item() == pytest.approx(1.0, abs=1e-15)


def test_sigmoid_derivative_is_at_most_a_quarter_and_composition_multiplies():
    assert derivative("sigmoid", X).max().item() == pytest.approx(0.25, abs=1e-15)
    deep = derivative(compose("sigmoid", 10), X)
    assert deep.max().item() <= 0.25**10
    assert 0.25**10 == pytest.approx(9.54e-7, rel=1e-3)


def test_compose_applies_depth_times():
    assert_close(compose(torch.tanh, 3)(X), torch.tanh(torch.tanh(torch.tanh(X))), rtol=0, atol=0)
    assert_close(compose("relu", 1)(X), torch.relu(X), rtol=0, atol=0)


def test_compose_and_derivative_match_autograd_chain_rule():
    x = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.sigmoid(torch.sigmoid(x)).sum(), x)
    s = torch.sigmoid(X)
    assert_close(derivative(compose("sigmoid", 2), X), g, rtol=1e-12, atol=1e-15)
    assert_close(g, s * (1 - s) * torch.sigmoid(s) * (1 - torch.sigmoid(s)), rtol=1e-12, atol=1e-15)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(KeyError, match="expected one of"):
        get_activation("swish2")
    with pytest.raises(TypeError, match="floating-point tensor"):
        derivative("relu", torch.arange(3))
    with pytest.raises(TypeError, match="floating-point tensor"):
        derivative("relu", [0.0, 1.0])
    with pytest.raises(TypeError, match="elementwise function"):
        derivative(3, X)
    with pytest.raises(ValueError, match="cannot differentiate"):
        derivative(lambda x: (x >= 0).to(x.dtype), X)
    with pytest.raises(ValueError, match="elementwise"):
        derivative(lambda x: x.sum(), X)
    for depth in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            compose("relu", depth)
    with pytest.raises(ValueError, match="low < high"):
        plot_activation("relu", x_range=(1.0, -1.0))


def test_derivative_leaves_its_input_alone_and_works_without_grad_mode():
    x = X.clone()
    with torch.no_grad():
        d = derivative("tanh", x)
    assert_close(x, X, rtol=0, atol=0)
    assert not x.requires_grad and not d.requires_grad


def test_plot_activation_draws_function_and_derivative():
    ax = plot_activation("sigmoid", depth=3)
    assert len(ax.lines) == 3  # function, derivative, zero line
    assert "max derivative" in ax.get_title() and ax.get_xlabel() == "x"
    plt.close(ax.figure)


def test_modules_plug_into_mlp():
    from course_lib import MLP

    model = MLP([4, 8, 2], activation=get_activation("gelu").module)
    assert isinstance(model[2], nn.GELU)


# ---- the chapter 2 exercises -------------------------------------------------------------

ACTIVATION_EXERCISES = [e.id for e in exercises_of("activations")]


def test_activations_exercises_are_the_eight_stable_ids():
    assert ACTIVATION_EXERCISES == [
        "activations.collapse", "activations.dead_units", "activations.layer_report",
        "activations.leaky_relu", "activations.numerical_derivative",
        "activations.saturated_fraction",
        "activations.sigmoid_derivative", "activations.step",
    ]


@pytest.mark.parametrize("exercise", exercises_of("activations"), ids=lambda e: e.id)
def test_reference_passes_and_mutants_fail_with_their_hint(exercise):
    assert grade_solution(exercise.id, exercise.reference).passed
    for mutant in exercise.mutants:
        result = grade_solution(exercise.id, mutant.fn)
        assert not result.passed and result.hint == mutant.hint, mutant.fn.__name__


def test_activations_self_test_is_clean():
    assert self_test(ACTIVATION_EXERCISES) == []
