"""Exercises of chapter 2, Activation functions (`exercises/02_activation_functions.ipynb`)."""
from __future__ import annotations

import torch
from torch import nn

from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


def _inputs(*extra: list[float]) -> list[Case]:
    g = torch.Generator().manual_seed(2)
    cases = [Case((torch.randn(n, generator=g) * 3,)) for n in (5, 17)]
    cases.append(Case((torch.randn(4, 3, generator=g),)))
    cases += [Case((torch.tensor(values),)) for values in extra]
    return cases


# ---- activations.step: the binary step ------------------------------------------------------

def step(x: torch.Tensor) -> torch.Tensor:
    """Heaviside step: 1.0 where x >= 0, else 0.0, with the dtype and shape of
    x.
    """
    return (x >= 0).to(x.dtype)


def _step_float(x):
    return (x >= 0).float()


def _step_strict(x):
    return (x > 0).to(x.dtype)


def _step_bool(x):
    return x >= 0


def _step_int(x):
    return torch.where(x >= 0, 1, 0)


def _step_sign(x):
    return torch.sign(x)


register(
    Exercise(
        id="activations.step",
        reference=step,
        cases=lambda: [
            *_inputs([-2.0, 0.0, 3.0], [0.0], [-1e-8, 1e-8]),
            Case(
                (torch.tensor([-1.5, 0.0, 2.0], dtype=torch.float64),),
                label="tensor([-1.5, 0.0, 2.0], dtype=torch.float64)",
            ),
        ],
        mutants=[
            Mutant(
                _step_float,
                ".float() always gives float32; the step keeps the input's dtype "
                "(float64 here): use (x >= 0).to(x.dtype).",
            ),
            Mutant(
                _step_strict,
                "At x = 0 the step is 1 in this course (x >= 0), not 0: check the comparison.",
            ),
            Mutant(
                _step_bool,
                "A comparison gives a bool tensor; convert it to the input's dtype with "
                ".to(x.dtype).",
            ),
            Mutant(
                _step_int,
                "torch.where(x >= 0, 1, 0) gives integers (int64); the step should have the "
                "input's "
                "floating-point dtype: use 1.0 and 0.0, or (x >= 0).to(x.dtype).",
            ),
            Mutant(
                _step_sign,
                "torch.sign gives -1 for negative inputs (and 0 at 0); the step is 0 for x < 0 and "
                "1 for x >= 0.",
            ),
        ],
    )
)


# ---- activations.sigmoid_derivative ---------------------------------------------------------

def sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    """d sigma / dx = sigma(x) (1 - sigma(x)), elementwise."""
    s = torch.sigmoid(x)
    return s * (1 - s)


def _sigmoid_derivative_of_input(x):
    return x * (1 - x)


def _sigmoid_derivative_sigma(x):
    return torch.sigmoid(x)


def _sigmoid_derivative_doubled(x):
    s = torch.sigmoid(x)
    return 2 * s * (1 - s)


def _sigmoid_derivative_plus(x):
    s = torch.sigmoid(x)
    return s * (1 + s)


def _sigmoid_derivative_tanh_pattern(x):
    return 1 - torch.sigmoid(x) ** 2


register(
    Exercise(
        id="activations.sigmoid_derivative",
        reference=sigmoid_derivative,
        cases=lambda: _inputs([0.0], [-30.0, 30.0]),
        hint="compare your formula with sigma(x) * (1 - sigma(x)) at x = 0, where sigma = 0.5 and "
             "the "
        "derivative is 0.25, and for large |x|, where it tends to 0.",
        mutants=[
            Mutant(
                _sigmoid_derivative_of_input,
                "sigma'(x) = sigma(x)(1 - sigma(x)): apply the sigmoid first, then use the "
                "formula.",
            ),
            Mutant(
                _sigmoid_derivative_sigma,
                "That is sigma(x) itself; its derivative is sigma(x)(1 - sigma(x)).",
            ),
            Mutant(
                _sigmoid_derivative_doubled,
                "A factor 2 too many: sigma'(x) = sigma(x) * (1 - sigma(x)), which is 0.25 at x = "
                "0.",
            ),
            Mutant(
                _sigmoid_derivative_plus,
                "The second factor is 1 - sigma(x), not 1 + sigma(x): the derivative tends to 0 as "
                "x grows.",
            ),
            Mutant(
                _sigmoid_derivative_tanh_pattern,
                "1 - sigma(x)^2 mimics tanh's derivative 1 - tanh(x)^2; the sigmoid's is sigma(x) "
                "* (1 - sigma(x)).",
            ),
        ],
    )
)


# ---- activations.leaky_relu (values and gradients) ------------------------------------------

def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x where x > 0, negative_slope * x elsewhere; differentiable with
    autograd.
    """
    return torch.where(x > 0, x, negative_slope * x)


def _leaky_relu_relu(x, negative_slope=0.01):
    return torch.relu(x)


def _leaky_relu_slope_everywhere(x, negative_slope=0.01):
    return negative_slope * x


def _leaky_relu_fixed_slope(x, negative_slope=0.01):
    return torch.where(x > 0, x, 0.01 * x)


def _leaky_relu_constant(x, negative_slope=0.01):
    return torch.where(x > 0, x, torch.full_like(x, negative_slope))


def _leaky_relu_detached(x, negative_slope=0.01):
    return torch.tensor([v if v > 0 else negative_slope * v for v in x.flatten().tolist()]).reshape(
        x.shape
    )


def _leaky_cases() -> list[Case]:
    cases = _inputs([-3.0, -0.5, 0.5, 3.0])
    g = torch.Generator().manual_seed(3)
    cases.append(Case((torch.randn(6, generator=g),), {"negative_slope": 0.2}, ))
    return cases


register(
    Exercise(
        id="activations.leaky_relu",
        reference=leaky_relu,
        cases=_leaky_cases,
        run=call_with_grad,
        hint="Build the result out of place: torch.where(condition, a, b) picks a or b "
             "elementwise. Editing x in place "
        "fails here, because the checker tracks the gradient with respect to x.",
        mutants=[
            Mutant(
                _leaky_relu_relu,
                "For x < 0 the output is negative_slope * x, not 0: that is plain ReLU.",
            ),
            Mutant(
                _leaky_relu_slope_everywhere,
                "Only negative inputs are scaled; positive inputs pass unchanged.",
            ),
            Mutant(
                _leaky_relu_fixed_slope,
                "Use the negative_slope argument rather than a fixed 0.01: a case calls it with "
                "negative_slope=0.2.",
            ),
            Mutant(
                _leaky_relu_constant,
                "For x <= 0 the output is negative_slope * x (a line through 0 with that slope), "
                "not the constant "
                "negative_slope.",
            ),
            Mutant(
                _leaky_relu_detached,
                "Keep the output connected to x: build it with tensor operations on x "
                "(torch.where), without "
                "Python numbers, .item(), .tolist() or .detach(), so that autograd can "
                "differentiate it.",
            ),
        ],
    )
)


# ---- activations.collapse: two linear layers are one ----------------------------------------

def collapse(
    W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of the single linear map x -> W2 (W1 x + b1) + b2, i.e. W = W2 W1,
    b = W2 b1 + b2.
    """
    return W2 @ W1, W2 @ b1 + b2


def _collapse_wrong_order(W1, b1, W2, b2):
    return W1 @ W2, W2 @ b1 + b2


def _collapse_transposed(W1, b1, W2, b2):
    return W1.T @ W2.T, W2 @ b1 + b2


def _collapse_bias_sum(W1, b1, W2, b2):
    return W2 @ W1, b1 + b2


def _collapse_no_first_bias(W1, b1, W2, b2):
    return W2 @ W1, b2


def _collapse_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    cases = []
    for n_in, n_hidden, n_out in [(3, 3, 3), (4, 6, 2), (5, 2, 5), (1, 7, 1)]:
        cases.append(Case((
            torch.randn(n_hidden, n_in, generator=g), torch.randn(n_hidden, generator=g),
            torch.randn(n_out, n_hidden, generator=g), torch.randn(n_out, generator=g),
        ), label=f"W1 {n_hidden}x{n_in}, b1 ({n_hidden},), W2 {n_out}x{n_hidden}, b2 ({n_out},)"))
    return cases


register(
    Exercise(
        id="activations.collapse",
        reference=collapse,
        cases=_collapse_cases,
        atol=1e-5,
        mutants=[
            Mutant(
                _collapse_wrong_order,
                "The first layer acts first: x -> W1 x, then W2 (W1 x), so the product is W2 @ W1, "
                "not W1 @ W2.",
            ),
            Mutant(
                _collapse_transposed,
                "W1.T @ W2.T is the transpose of the answer: with y = W x (as in nn.Linear), W has "
                "shape "
                "(outputs, inputs), so the merged weight is W2 @ W1.",
            ),
            Mutant(_collapse_bias_sum, "The first bias also passes through W2: b = W2 b1 + b2."),
            Mutant(
                _collapse_no_first_bias,
                "Don't drop b1: it passes through the second layer as W2 b1.",
            ),
        ],
    )
)


# ---- activations.numerical_derivative -------------------------------------------------------

def numerical_derivative(f, x: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    """Central difference (f(x + h) - f(x - h)) / (2h), elementwise, for an
    elementwise f.
    """
    return (f(x + h) - f(x - h)) / (2 * h)


def _forward_difference(f, x, h=1e-3):
    return (f(x + h) - f(x)) / h


def _difference_without_2(f, x, h=1e-3):
    return (f(x + h) - f(x - h)) / h


def _difference_precedence(f, x, h=1e-3):
    return (f(x + h) - f(x - h)) / 2 * h


def _difference_ignores_h(f, x, h=1e-3):
    return (f(x + 1e-3) - f(x - 1e-3)) / 2e-3


def _exact_derivative(f, x, h=1e-3):
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad


def _derivative_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, generator=g, dtype=torch.float64)
    return [
        Case((torch.tanh, x), label="f = torch.tanh, x = 8 random float64 values"),
        Case((torch.exp, x), label="f = torch.exp, x = 8 random float64 values"),
        Case(
            (torch.sin, torch.linspace(-3, 3, 7, dtype=torch.float64)),
            label="f = torch.sin, x = linspace(-3, 3, 7)",
        ),
        Case(
            (torch.square, x, 1e-2), label="f = torch.square, x = 8 random float64 values, h = 0.01"
        ),
        Case((torch.exp, x), {"h": 0.1}, label="f = torch.exp, x = 8 random float64 values, h=0.1"),
    ]


register(
    Exercise(
        id="activations.numerical_derivative",
        reference=numerical_derivative,
        cases=_derivative_cases,
        rtol=1e-9,
        atol=1e-10,
        mutants=[
            Mutant(
                _forward_difference,
                "Use the central difference (f(x + h) - f(x - h)) / (2h): its error shrinks like "
                "h^2, "
                "the forward difference's only like h.",
            ),
            Mutant(_difference_without_2, "The two points are 2h apart: divide by 2 * h."),
            Mutant(
                _difference_precedence,
                "Operator precedence: `/ 2 * h` divides by 2 and then multiplies by h; "
                "write `/ (2 * h)`.",
            ),
            Mutant(
                _difference_ignores_h,
                "Use the step h that is passed in (a case uses h=0.1), not a fixed 1e-3.",
            ),
            Mutant(
                _exact_derivative,
                "That is the exact derivative (autograd or a formula). The exercise asks for the "
                "central-difference "
                "approximation itself, which differs from the exact value by about h^2/6 times the "
                "third derivative.",
            ),
        ],
    )
)


# ---- activations.saturated_fraction and activations.dead_units (issue 15) ----------------------

def saturated_fraction(z: torch.Tensor, threshold: float = 0.1) -> float:
    """Fraction of the values of a sigmoid layer's pre-activations z (N, units)
    at which the sigmoid is saturated: its derivative is below `threshold`
    times its maximum, 1/4.
    """
    s = torch.sigmoid(z)
    slope = s * (1 - s)  # sigma'(z), at most 1/4 (at z = 0)
    return (slope < threshold * 0.25).float().mean().item()


def dead_units(z: torch.Tensor) -> float:
    """Fraction of the units (columns) of a ReLU layer's pre-activations z (N,
    units) that are dead on this batch: z <= 0 for every example, so relu(z)
    = 0 and relu'(z) = 0 throughout.
    """
    return (z <= 0).all(dim=0).float().mean().item()


def _saturated_unscaled(z, threshold=0.1):
    s = torch.sigmoid(z)
    return (s * (1 - s) < threshold).float().mean().item()


def _saturated_on_z(z, threshold=0.1):
    return (z.abs() > 1 / threshold).float().mean().item()


def _saturated_per_unit(z, threshold=0.1):
    s = torch.sigmoid(z)
    return (s * (1 - s) < threshold * 0.25).all(dim=0).float().mean().item()


def _saturated_one_side(z, threshold=0.1):
    s = torch.sigmoid(z)
    return ((s * (1 - s) < threshold * 0.25) & (z > 0)).float().mean().item()


def _saturated_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    cases = [Case((scale * torch.randn(n, units, generator=g),)) for scale, n, units in
             [(1.0, 64, 16), (4.0, 32, 8), (12.0, 100, 5)]]
    cases.append(Case((4.0 * torch.randn(50, 10, generator=g) - 3.0, 0.5)))
    cases.append(Case((torch.tensor([[-10.0, 0.0, 10.0], [5.0, -5.0, 0.5]]),),
                      label="z = [[-10, 0, 10], [5, -5, 0.5]]"))
    return cases


register(
    Exercise(
        id="activations.saturated_fraction",
        reference=saturated_fraction,
        cases=_saturated_cases,
        atol=1e-6,
        mutants=[
            Mutant(
                _saturated_unscaled,
                "Compare the derivative with threshold times its maximum: the sigmoid's derivative "
                "never exceeds 1/4, so the cut-off is threshold * 0.25.",
            ),
            Mutant(
                _saturated_on_z,
                "Saturation is about the derivative sigma'(z) = sigma(z) (1 - sigma(z)), not a "
                "fixed "
                "cut-off on |z|: compute the slope.",
            ),
            Mutant(
                _saturated_per_unit,
                "Count every value (example, unit), not only units saturated for all examples: "
                "take the mean over the whole tensor.",
            ),
            Mutant(
                _saturated_one_side,
                "The sigmoid saturates on both sides: large negative z is flat too.",
            ),
        ],
    )
)


def _dead_per_value(z):
    return (z <= 0).float().mean().item()


def _dead_per_example(z):
    return (z <= 0).all(dim=1).float().mean().item()


def _dead_strict(z):
    return (z < 0).all(dim=0).float().mean().item()


def _dead_any(z):
    return (z <= 0).any(dim=0).float().mean().item()


def _dead_cases() -> list[Case]:
    g = torch.Generator().manual_seed(22)
    cases = []
    for n, units, shift in [(32, 10, 0.0), (16, 20, -1.5), (64, 8, -2.5), (5, 12, -1.0)]:
        z = torch.randn(n, units, generator=g) + shift + torch.randn(units, generator=g)
        cases.append(Case((z,), label=f"z ({n}, {units}), mean about {shift}"))
    z = torch.tensor([[0.0, -1.0, 2.0, 0.0], [0.0, -3.0, -1.0, -2.0], [0.0, -0.5, -4.0, 1.0]])
    cases.append(Case((z,), label="z = [[0, -1, 2, 0], [0, -3, -1, -2], [0, -0.5, -4, 1]]"))
    return cases


register(Exercise(
    id="activations.dead_units",
    reference=dead_units,
    cases=_dead_cases,
    atol=1e-6,
    mutants=[
        Mutant(_dead_per_value,
               "A unit is dead only if it is off for *every* example: test each column with "
               ".all(dim=0), not each value."),
        Mutant(_dead_per_example,
               "Units are the columns of z (N, units); reduce over the examples, dim=0."),
        Mutant(_dead_strict,
               "relu(0) = 0 and PyTorch's relu'(0) = 0: a unit whose input is exactly 0 passes "
               "nothing either, so use z <= 0."),
        Mutant(_dead_any,
               "Being off for some examples is normal; dead means off for all of them: .all, "
               "not .any."),
    ],
))


# ---- activations.layer_report: dead and saturated units, layer by layer -----------------------

def layer_report(
    model: nn.Sequential, X: torch.Tensor, threshold: float = 0.1
) -> list[float]:
    """One number per nn.ReLU, nn.Sigmoid or nn.Tanh layer of `model`, input
    first, on the inputs X (N, features): for a ReLU, the fraction of its
    units that are dead on X (output 0 for every example); for a sigmoid or
    tanh, the fraction of its output values at which it is saturated (its
    derivative below `threshold` times its maximum, 1/4 or 1).
    """
    report = []
    h = X
    with torch.no_grad():
        for layer in model:
            h = layer(h)  # each layer takes the previous layer's output
            if isinstance(layer, nn.ReLU):
                dead = (h == 0).all(dim=0)  # one flag per unit (column)
                report.append(dead.float().mean().item())
            elif isinstance(layer, nn.Sigmoid):
                slope = h * (1 - h)  # sigma' = sigma (1 - sigma), at most 1/4
                report.append((slope < threshold / 4).float().mean().item())
            elif isinstance(layer, nn.Tanh):
                slope = 1 - h**2  # tanh' = 1 - tanh^2, at most 1
                report.append((slope < threshold).float().mean().item())
    return report


def _report_with(model, X, threshold, relu, sigmoid, tanh, every_layer=False):
    report, h = [], X
    with torch.no_grad():
        for layer in model:
            z, h = h, layer(h)
            if isinstance(layer, nn.ReLU):
                report.append(relu(z, h))
            elif isinstance(layer, nn.Sigmoid):
                report.append(sigmoid(z, h, threshold))
            elif isinstance(layer, nn.Tanh):
                report.append(tanh(z, h, threshold))
            elif every_layer:
                report.append(relu(z, h))
    return report


def _dead(z, h):
    return (h == 0).all(dim=0).float().mean().item()


def _saturated_sigmoid(z, h, threshold):
    return (h * (1 - h) < threshold * 0.25).float().mean().item()


def _saturated_tanh(z, h, threshold):
    return (1 - h**2 < threshold).float().mean().item()


def _report_tanh_quarter(model, X, threshold=0.1):
    def tanh(z, h, t):
        return (1 - h**2 < t * 0.25).float().mean().item()
    return _report_with(model, X, threshold, _dead, _saturated_sigmoid, tanh)


def _report_zero_values(model, X, threshold=0.1):
    def relu(z, h):
        return (h == 0).float().mean().item()
    return _report_with(model, X, threshold, relu, _saturated_sigmoid, _saturated_tanh)


def _report_sigmoid_twice(model, X, threshold=0.1):
    def sigmoid(z, h, t):
        s = torch.sigmoid(h)  # the formula for a pre-activation, applied to the output
        return (s * (1 - s) < t * 0.25).float().mean().item()
    return _report_with(model, X, threshold, _dead, sigmoid, _saturated_tanh)


def _report_every_layer(model, X, threshold=0.1):
    return _report_with(model, X, threshold, _dead, _saturated_sigmoid, _saturated_tanh,
                        every_layer=True)


def _report_some_example(model, X, threshold=0.1):
    def relu(z, h):
        return (h == 0).any(dim=0).float().mean().item()
    return _report_with(model, X, threshold, relu, _saturated_sigmoid, _saturated_tanh)


def _report_cases() -> list[Case]:
    g = torch.Generator().manual_seed(23)
    cases = []
    for sizes, kinds, scale, shift in [
        ([6, 16, 16, 3], [nn.ReLU, nn.ReLU], 1.0, -0.5),
        ([5, 12, 12, 12, 4], [nn.Sigmoid, nn.Tanh, nn.ReLU], 3.0, 0.0),
        ([4, 10, 10, 2], [nn.Tanh, nn.Sigmoid], 4.0, 0.5),
        ([8, 20, 20, 20, 5], [nn.ReLU, nn.ReLU, nn.ReLU], 1.0, -1.0),
    ]:
        layers: list[nn.Module] = []
        for n_in, n_out, kind in zip(sizes[:-1], sizes[1:], [*kinds, None]):
            linear = nn.Linear(n_in, n_out)
            with torch.no_grad():  # seeded weights, independent of the global generator
                linear.weight.copy_(scale * torch.randn(n_out, n_in, generator=g) / n_in**0.5)
                linear.bias.copy_(shift + 0.5 * torch.randn(n_out, generator=g))
            layers += [linear] if kind is None else [linear, kind()]
        X = torch.randn(30, sizes[0], generator=g)
        names = ", ".join(k.__name__ for k in kinds)
        label = (f"an MLP {sizes} with {names} (weights x {scale}, biases about {shift}), "
                 f"X of shape {tuple(X.shape)}")
        cases.append(Case((nn.Sequential(*layers), X), label=label))
    model, X = cases[1].args
    cases.append(Case((model, X), {"threshold": 0.5}, label=cases[1].label + ", threshold=0.5"))
    return cases


register(
    Exercise(
        id="activations.layer_report",
        reference=layer_report,
        cases=_report_cases,
        atol=1e-6,
        hint="Walk through the layers in order, feeding each the previous layer's output, and "
             "append one number after each ReLU, Sigmoid or Tanh layer.",
        mutants=[
            Mutant(_report_tanh_quarter,
                   "tanh's derivative 1 - tanh^2 peaks at 1, not 1/4: for a tanh layer the "
                   "cut-off is threshold * 1."),
            Mutant(_report_zero_values,
                   "For a ReLU layer, count units (columns) that are 0 for every example "
                   "(.all(dim=0)), not zero values."),
            Mutant(_report_sigmoid_twice,
                   "After an nn.Sigmoid layer you hold its output s = sigma(z), not z: its "
                   "derivative is s * (1 - s); applying the sigmoid again measures something "
                   "else."),
            Mutant(_report_every_layer,
                   "Report only the activation layers (nn.ReLU, nn.Sigmoid, nn.Tanh), not the "
                   "nn.Linear layers."),
            Mutant(_report_some_example,
                   "A unit that is 0 for some examples is normal; dead means 0 for every "
                   "example: .all, not .any."),
        ],
    )
)
