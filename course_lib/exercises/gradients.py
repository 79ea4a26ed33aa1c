"""Exercises of chapter 3, Vanishing and exploding gradients.

The notebook: `exercises/03_vanishing_exploding_gradients.ipynb`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading import Case, Exercise, Mutant, register

# ---- gradients.weight_gradient_norms: the per-layer diagnostic -------------------------------


def weight_gradient_norms(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """L2 norm of each nn.Linear weight's gradient of the cross-entropy loss on
    (X, y), input first.
    """
    model.zero_grad()  # gradients accumulate: clear those of an earlier call
    F.cross_entropy(model(X), y).backward()
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return torch.stack([layer.weight.grad.norm() for layer in layers])


def _norms_accumulated(model, X, y):
    F.cross_entropy(model(X), y).backward()
    return torch.stack([m.weight.grad.norm() for m in model.modules() if isinstance(m, nn.Linear)])


def _norms_with_biases(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return torch.stack([p.grad.norm() for p in model.parameters()])


def _norms_squared(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return torch.stack(
        [m.weight.grad.pow(2).sum() for m in model.modules() if isinstance(m, nn.Linear)]
    )


def _norms_of_weights(model, X, y):
    return torch.stack(
        [m.weight.detach().norm() for m in model.modules() if isinstance(m, nn.Linear)]
    )


def _norms_reversed(model, X, y):
    return weight_gradient_norms(model, X, y).flip(0)


def _norm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(31)
    cases = []
    for sizes, activation in [
        ([6, 8, 8, 3], nn.Sigmoid),
        ([5, 7, 7, 7, 4], nn.Tanh),
        ([4, 6, 2], nn.ReLU),
    ]:
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            linear = nn.Linear(n_in, n_out)
            with torch.no_grad():  # seeded weights, independent of the global generator
                linear.weight.copy_(torch.randn(n_out, n_in, generator=g) / n_in**0.5)
                linear.bias.copy_(0.1 * torch.randn(n_out, generator=g))
            layers += [linear, activation()]
        model = nn.Sequential(*layers[:-1])
        X = torch.randn(10, sizes[0], generator=g)
        y = torch.randint(0, sizes[-1], (10,), generator=g)
        label = (f"an MLP {sizes} with {activation.__name__}, "
                 f"X of shape {tuple(X.shape)}, y of shape (10,)")
        cases.append(Case((model, X, y), label=label))
    return cases


def _call_twice(solution, case: Case):
    """The diagnostic must not depend on what happened before: call it twice, keep the second
    answer.
    """
    solution(*case.args, **case.kwargs)
    return solution(*case.args, **case.kwargs)


register(
    Exercise(
        id="gradients.weight_gradient_norms",
        reference=weight_gradient_norms,
        cases=_norm_cases,
        run=_call_twice,
        mutants=[
            Mutant(
                _norms_accumulated,
                "loss.backward() adds to .grad: called twice on the same model, your norms double. "
                "Clear the old gradients first with model.zero_grad().",
            ),
            Mutant(
                _norms_with_biases,
                "Only the Linear layers' weights count, one norm per layer: leave the biases out.",
            ),
            Mutant(
                _norms_squared, "The L2 norm is the square root of the sum of squares: use .norm()."
            ),
            Mutant(
                _norms_of_weights,
                "That is the norm of the weights themselves; the diagnostic is the norm of their "
                "gradients "
                "(layer.weight.grad) after loss.backward().",
            ),
            Mutant(_norms_reversed, "List the layers input first (the order of model.modules())."),
        ],
    )
)


# ---- gradients.clip_by_global_norm ----------------------------------------------------------


def clip_by_global_norm(
    grads: list[torch.Tensor], max_norm: float
) -> list[torch.Tensor]:
    """Scale all tensors by min(1, max_norm / (total + 1e-6)), total = the L2
    norm of all of them together.
    """
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale for g in grads]


def _clip_each_tensor(grads, max_norm):
    return [g * torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0) for g in grads]


def _clip_always_rescale(grads, max_norm):
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g * max_norm / (total + 1e-6) for g in grads]


def _clip_values(grads, max_norm):
    return [g.clamp(-max_norm, max_norm) for g in grads]


def _clip_squared_norm(grads, max_norm):
    total = sum((g**2).sum() for g in grads)
    return [g * torch.clamp(max_norm / (total + 1e-6), max=1.0) for g in grads]


def _clip_cases() -> list[Case]:
    g = torch.Generator().manual_seed(32)
    big = [
        10 * torch.randn(4, 3, generator=g),
        10 * torch.randn(3, generator=g),
        10 * torch.randn(2, 4, generator=g),
    ]
    return [
        Case(([torch.tensor([3.0, 4.0])], 1.0), label="grads = [tensor([3., 4.])], max_norm = 1.0"),
        Case(
            (big, 1.0),
            label="three tensors of shapes (4, 3), (3,), (2, 4), values ~ 10 * N(0, 1); max_norm = "
                  "1.0",
        ),
        Case((big, 5.0), label="the same three tensors; max_norm = 5.0"),
        Case(
            ([0.01 * torch.randn(5, generator=g), 0.01 * torch.randn(2, 2, generator=g)], 1.0),
            label="small gradients (norm well below max_norm = 1.0): leave them as they are",
        ),
        Case(
            ([torch.tensor([0.5, 0.5]), torch.tensor([3.0])], 2.0),
            label="grads = [tensor([0.5, 0.5]), tensor([3.])], max_norm = 2.0",
        ),
        Case(([torch.zeros(3)], 1.0), label="grads = [tensor([0., 0., 0.])], max_norm = 1.0"),
    ]


register(
    Exercise(
        id="gradients.clip_by_global_norm",
        reference=clip_by_global_norm,
        cases=_clip_cases,
        mutants=[
            Mutant(
                _clip_each_tensor,
                "Clip by the GLOBAL norm: one scale factor computed from all tensors together, "
                "applied to each, "
                "so the direction of the full gradient is kept.",
            ),
            Mutant(
                _clip_always_rescale,
                "Only scale down: when the norm is already below max_norm, leave the gradients "
                "unchanged "
                "(scale = min(1, max_norm / norm)).",
            ),
            Mutant(
                _clip_values,
                "That clips each value to [-max_norm, max_norm] (clip_grad_value_), which changes "
                "the direction; "
                "clip_grad_norm_ rescales the whole vector instead.",
            ),
            Mutant(
                _clip_squared_norm,
                "The norm is the square root of the sum of squares: take torch.sqrt.",
            ),
        ],
    )
)


# ---- gradients.sigmoid_chain_derivative: the product through depth --------------------------


def sigmoid_chain_derivative(x: torch.Tensor, depth: int) -> torch.Tensor:
    """d/dx of sigmoid applied `depth` times, sigma(sigma(...sigma(x))),
    elementwise, by the chain rule.
    """
    derivative = torch.ones_like(x)
    a = x
    for _ in range(depth):
        s = torch.sigmoid(a)
        # chain rule: multiply by sigma'(a) at this layer's input
        derivative = derivative * s * (1 - s)
        a = s
    return derivative


def _chain_same_point(x, depth):
    s = torch.sigmoid(x)
    return (s * (1 - s)) ** depth


def _chain_one_extra(x, depth):
    return sigmoid_chain_derivative(x, depth + 1)


def _chain_one_short(x, depth):
    return sigmoid_chain_derivative(x, max(depth - 1, 0))


def _chain_bound(x, depth):
    return torch.full_like(x, 0.25**depth)


def _chain_sum(x, depth):
    total, a = torch.zeros_like(x), x
    for _ in range(depth):
        s = torch.sigmoid(a)
        total, a = total + s * (1 - s), s
    return total


def _chain_cases() -> list[Case]:
    g = torch.Generator().manual_seed(33)
    x = 3 * torch.randn(7, generator=g, dtype=torch.float64)
    return [
        Case((torch.tensor([0.0], dtype=torch.float64), 1)),
        Case((torch.tensor([0.0], dtype=torch.float64), 2)),
        Case((x, 3)),
        Case((x, 10)),
        Case((torch.tensor([-4.0, 0.0, 4.0], dtype=torch.float64), 5)),
    ]


register(
    Exercise(
        id="gradients.sigmoid_chain_derivative",
        reference=sigmoid_chain_derivative,
        cases=_chain_cases,
        rtol=1e-7,
        atol=1e-12,
        mutants=[
            Mutant(
                _chain_same_point,
                "Each layer's sigma' is evaluated at THAT layer's input: a_0 = x, a_k = "
                "sigma(a_(k-1)); "
                "do not reuse sigma'(x) for every layer.",
            ),
            Mutant(
                _chain_one_extra, "One factor per sigmoid: `depth` factors in all, not depth + 1."
            ),
            Mutant(
                _chain_one_short, "One factor per sigmoid: `depth` factors in all, not depth - 1."
            ),
            Mutant(
                _chain_bound,
                "0.25**depth is only the upper bound (sigma' <= 1/4, reached at 0); compute the "
                "actual product.",
            ),
            Mutant(
                _chain_sum,
                "The chain rule multiplies the layers' derivatives; it does not add them.",
            ),
        ],
    )
)


# ---- gradients.init_std: the standard deviations of the initialization schemes --------------


def init_std(scheme: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of a weight under "glorot", "he" or PyTorch's
    "default" Linear initialization.
    """
    if scheme == "glorot":
        return math.sqrt(2 / (fan_in + fan_out))  # Var = 2 / (fan_in + fan_out)
    if scheme == "he":
        return math.sqrt(2 / fan_in)  # Var = 2 / fan_in
    if scheme == "default":
        # U(-b, b), b = 1/sqrt(fan_in): Var = b^2 / 3
        return math.sqrt(1 / (3 * fan_in))
    raise ValueError(
        f"scheme must be 'glorot', 'he' or 'default', got {scheme!r}"
    )


def _std_as_variance(scheme, fan_in, fan_out):
    return init_std(scheme, fan_in, fan_out) ** 2


def _std_he_fan_out(scheme, fan_in, fan_out):
    return math.sqrt(2 / fan_out) if scheme == "he" else init_std(scheme, fan_in, fan_out)


def _std_glorot_without_2(scheme, fan_in, fan_out):
    return (
        math.sqrt(1 / (fan_in + fan_out))
        if scheme == "glorot"
        else init_std(scheme, fan_in, fan_out)
    )


def _std_default_bound(scheme, fan_in, fan_out):
    return 1 / math.sqrt(fan_in) if scheme == "default" else init_std(scheme, fan_in, fan_out)


def _std_cases() -> list[Case]:
    cases = [Case((scheme, fan_in, fan_out)) for scheme in ("glorot", "he", "default")
             for fan_in, fan_out in [(64, 64), (100, 10), (3, 300)]]
    return cases + [Case(("xavier_uniform", 10, 10))]


register(
    Exercise(
        id="gradients.init_std",
        reference=init_std,
        cases=_std_cases,
        rtol=1e-6,
        atol=1e-9,
        mutants=[
            Mutant(
                _std_as_variance,
                "The formulas give the variance; return its square root, the standard deviation.",
            ),
            Mutant(
                _std_he_fan_out,
                "He initialization (mode fan_in) keeps the forward signal's variance: Var = 2 / "
                "fan_in.",
            ),
            Mutant(
                _std_glorot_without_2,
                "Glorot: Var = 2 / (fan_in + fan_out), the average of 1/fan_in and 1/fan_out.",
            ),
            Mutant(
                _std_default_bound,
                "PyTorch's default draws from U(-b, b) with b = 1/sqrt(fan_in); a uniform's "
                "variance is b^2 / 3, "
                "so the std is b / sqrt(3), not b.",
            ),
        ],
    )
)


# ---- gradients.variance_preserving_std: find the weight scale, do not look it up (issue 15) ----


def variance_preserving_std(activation, fan_in: int) -> float:
    """The weight standard deviation that keeps Var z_l = Var z_{l-1} = 1
    through a layer with activation `activation` (a function on tensors): Var
    z_l = fan_in Var(W) E[phi(z)^2] with z ~ N(0, 1), so std = 1 /
    sqrt(fan_in E[phi(z)^2]). E[.] is computed numerically.
    """
    z = torch.linspace(-12, 12, 240_001, dtype=torch.float64)  # quadrature grid
    # standard normal pdf
    density = torch.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    # E[phi(z)^2]
    second_moment = torch.trapezoid(activation(z) ** 2 * density, z).item()
    return 1 / math.sqrt(fan_in * second_moment)


def _vp_variance(activation, fan_in):
    return variance_preserving_std(activation, fan_in) ** 2


def _vp_centred(activation, fan_in):
    z = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
    density = torch.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    mean = torch.trapezoid(activation(z) * density, z)
    var = torch.trapezoid((activation(z) - mean) ** 2 * density, z).item()
    return 1 / math.sqrt(fan_in * var)


def _vp_no_fan_in(activation, fan_in):
    return variance_preserving_std(activation, 1)


def _vp_he_always(activation, fan_in):
    return math.sqrt(2 / fan_in)


def _vp_slope_at_zero(activation, fan_in):
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    slope = torch.autograd.grad(activation(z + 1e-3).sum(), z)[0].item()
    return 1 / (slope * math.sqrt(fan_in))


def _vp_cases() -> list[Case]:
    cases = [
        Case((fn, fan_in), label=f"activation = {name}, fan_in = {fan_in}")
        for name, fn, fan_in in [
            ("torch.relu", torch.relu, 64),
            ("identity (lambda z: z)", lambda z: z, 100),
            ("torch.tanh", torch.tanh, 64),
            ("torch.sigmoid", torch.sigmoid, 50),
            ("leaky ReLU, slope 0.2", lambda z: torch.nn.functional.leaky_relu(z, 0.2), 256),
            ("torch.nn.functional.gelu", torch.nn.functional.gelu, 32),
        ]
    ]
    return cases


register(
    Exercise(
        id="gradients.variance_preserving_std",
        reference=variance_preserving_std,
        cases=_vp_cases,
        rtol=2e-3,
        atol=1e-6,
        mutants=[
            Mutant(_vp_variance, "Return the standard deviation, the square root of Var(W)."),
            Mutant(
                _vp_centred,
                "The next layer's variance is built from E[phi(z)^2], not from Var phi(z): a "
                "ReLU's "
                "output has a nonzero mean, and it counts (that is where He's factor 2 comes "
                "from).",
            ),
            Mutant(
                _vp_no_fan_in,
                "Each pre-activation sums fan_in products: Var z_l = fan_in Var(W) E[phi^2]; "
                "divide by fan_in.",
            ),
            Mutant(
                _vp_he_always,
                "He's sqrt(2 / fan_in) is right for ReLU only; compute E[phi(z)^2] for the "
                "activation you are given.",
            ),
            Mutant(
                _vp_slope_at_zero,
                "The slope at 0 describes small signals only; use the second moment E[phi(z)^2] "
                "over z ~ N(0, 1).",
            ),
        ],
    )
)
