"""Alternative correct answers to chapter 2's exercises (`course_lib.exercises.activations`),
written differently from the references: the grader's parity test checks that `cl.check` and
the grader both pass them."""

import torch


def step(x):
    return torch.heaviside(x, torch.ones((), dtype=x.dtype))


def sigmoid_derivative(x):
    e = torch.exp(-x.abs())  # stable for large |x|: sigma(|x|) (1 - sigma(|x|)) is even in x
    return e / (1 + e) ** 2


def leaky_relu(x, negative_slope=0.01):
    return torch.nn.functional.leaky_relu(x, negative_slope)


def collapse(W1, b1, W2, b2):
    W = torch.einsum("ij,jk->ik", W2, W1)
    b = torch.einsum("ij,j->i", W2, b1) + b2
    return W, b


def numerical_derivative(f, x, h=1e-3):
    forward, backward = f(x + h), f(x - h)
    return (forward - backward) / h / 2


def saturated_fraction(z, threshold=0.1):
    slope = torch.sigmoid(z) * torch.sigmoid(-z)  # sigma(z) (1 - sigma(z))
    return float((4 * slope < threshold).sum()) / z.numel()


def dead_units(z):
    alive = (torch.relu(z) > 0).any(dim=0)
    return 1.0 - alive.float().mean().item()


def layer_report(model, X, threshold=0.1):
    report = []
    for i, layer in enumerate(model):
        name = type(layer).__name__
        if name not in ("ReLU", "Sigmoid", "Tanh"):
            continue
        with torch.no_grad():
            z = model[:i](X)  # the layer's input, the pre-activation
        if name == "ReLU":
            report.append(float((z > 0).sum(dim=0).eq(0).double().mean()))
            continue
        z = z.detach().requires_grad_(True)
        out = torch.sigmoid(z) if name == "Sigmoid" else torch.tanh(z)
        (slope,) = torch.autograd.grad(out.sum(), z)  # the derivative by autograd
        peak = 0.25 if name == "Sigmoid" else 1.0
        report.append(float((slope < threshold * peak).double().mean()))
    return report
