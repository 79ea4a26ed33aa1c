"""Exercises of chapter 5, Optimization hyperparameters.

The notebook: `exercises/05_optimization_hyperparameters.ipynb`.
"""
from __future__ import annotations

import math

import torch

from course_lib.exercises import PYTHON_NUMBER_HINT
from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


def _step_cases(seed: int) -> list[Case]:
    """(w, v, g, lr, beta) cases: random tensors of several shapes, a fresh velocity, beta = 0."""
    g = torch.Generator().manual_seed(seed)
    cases = [
        Case(
            (torch.tensor([1.0, -2.0]), torch.zeros(2), torch.tensor([0.5, 1.0]), 0.1, 0.9),
            label="w = [1., -2.], v = [0., 0.] (first step), g = [0.5, 1.], lr = 0.1, beta = 0.9",
        )
    ]
    for shape, lr, beta in [
        ((5,), 0.1, 0.9),
        ((3, 4), 0.01, 0.99),
        ((6,), 0.5, 0.5),
        ((2, 3), 0.05, 0.0),
    ]:
        w, v, grad = (torch.randn(shape, generator=g) for _ in range(3))
        cases.append(
            Case(
                (w, v, grad, lr, beta),
                label=f"random w, v, g of shape {shape}, lr = {lr}, beta = {beta}",
            )
        )
    return cases


# ---- optimization.momentum_step: PyTorch's convention -----------------------------------------

def momentum_step(
    w: torch.Tensor, v: torch.Tensor, g: torch.Tensor, lr: float, beta: float
):
    """One SGD step with momentum as torch.optim.SGD does it: return (new w, new
    v).
    """
    v_new = beta * v + g  # the velocity accumulates raw gradients
    w_new = w - lr * v_new  # the learning rate multiplies the velocity
    return w_new, v_new


def _step_lr_inside(w, v, g, lr, beta):
    v_new = beta * v + lr * g
    return w - v_new, v_new


def _step_dampened(w, v, g, lr, beta):
    v_new = beta * v + (1 - beta) * g
    return w - lr * v_new, v_new


def _step_old_velocity(w, v, g, lr, beta):
    return w - lr * (v + g), beta * v + g


def _step_no_beta(w, v, g, lr, beta):
    v_new = v + g
    return w - lr * v_new, v_new


def _step_plus(w, v, g, lr, beta):
    v_new = beta * v + g
    return w + lr * v_new, v_new


register(
    Exercise(
        id="optimization.momentum_step",
        reference=momentum_step,
        cases=lambda: _step_cases(51),
        mutants=[
            Mutant(
                _step_lr_inside,
                "Momentum convention: this is the 'lr inside the velocity' form (v = beta v + lr "
                "g, "
                "w = w - v). torch.optim.SGD keeps the raw gradients in the velocity, v = beta v + "
                "g, and "
                "multiplies by the learning rate when stepping, w = w - lr v.",
            ),
            Mutant(
                _step_dampened,
                "No (1 - beta) factor on the gradient: that is an exponential moving average "
                "(dampening "
                "in torch.optim.SGD, or Adam's first moment). SGD's momentum is v = beta v + g.",
            ),
            Mutant(
                _step_old_velocity,
                "Update the velocity first, then step with the new velocity: w - lr * (beta v + "
                "g).",
            ),
            Mutant(
                _step_no_beta,
                "The old velocity is multiplied by beta before the gradient is added.",
            ),
            Mutant(_step_plus, "Gradient *descent*: subtract the step, w - lr v."),
        ],
    )
)


# ---- optimization.momentum_step_lr_inside: the other convention --------------------------------

def momentum_step_lr_inside(
    w: torch.Tensor, v: torch.Tensor, g: torch.Tensor, lr: float, beta: float
):
    """One momentum step with the learning rate inside the velocity: return (new
    w, new v).
    """
    v_new = beta * v + lr * g  # the velocity is a step, in units of w
    w_new = w - v_new
    return w_new, v_new


def _inside_pytorch(w, v, g, lr, beta):
    return momentum_step(w, v, g, lr, beta)


def _inside_lr_twice(w, v, g, lr, beta):
    v_new = beta * v + lr * g
    return w - lr * v_new, v_new


def _inside_dampened(w, v, g, lr, beta):
    v_new = beta * v + (1 - beta) * lr * g
    return w - v_new, v_new


register(
    Exercise(
        id="optimization.momentum_step_lr_inside",
        reference=momentum_step_lr_inside,
        cases=lambda: _step_cases(52),
        mutants=[
            Mutant(
                _inside_pytorch,
                "Momentum convention: this is PyTorch's form (v = beta v + g, w = w - lr v). Here "
                "the "
                "learning rate goes inside the velocity, v = beta v + lr g, and the step is w = w "
                "- v.",
            ),
            Mutant(
                _inside_lr_twice,
                "The learning rate is already inside the velocity: step with w - v, not w - lr v.",
            ),
            Mutant(_inside_dampened, "No (1 - beta) factor: v = beta v + lr g."),
        ],
    )
)


# ---- optimization.cosine_with_warmup -----------------------------------------------------------

def cosine_with_warmup(
    step: int, total_steps: int, warmup_steps: int, base_lr: float
) -> float:
    """Learning rate of step `step` (0, 1, ...): linear warmup to base_lr, then
    a cosine to 0.
    """
    if step < warmup_steps:
        # step warmup_steps - 1 reaches base_lr
        return base_lr * (step + 1) / warmup_steps
    # 0 at the end of warmup
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))


def _every_step(solution, case: Case) -> list[float]:
    """The schedule over all steps of the case, so that feedback shows the whole curve."""
    total, warmup, base_lr = case.args
    return [float(solution(step, total, warmup, base_lr)) for step in range(total)]


def _cosine_cases() -> list[Case]:
    return [
        Case(
            (total, warmup, lr),
            label=f"steps 0..{total - 1}: total_steps={total}, warmup_steps={warmup}, base_lr={lr}",
        )
        for total, warmup, lr in [
            (10, 3, 0.1),
            (20, 5, 1.0),
            (8, 0, 0.5),
            (6, 1, 2.0),
            (12, 4, 0.3),
        ]
    ]


def _warmup_from_zero(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    return cosine_with_warmup(step, total_steps, warmup_steps, base_lr)


def _cosine_over_all_steps(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return base_lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def _no_warmup(step, total_steps, warmup_steps, base_lr):
    return base_lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def _cosine_without_half(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return base_lr * math.cos(0.5 * math.pi * (step - warmup_steps) / (total_steps - warmup_steps))


def _cosine_not_shifted(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return base_lr * math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps))


register(
    Exercise(
        id="optimization.cosine_with_warmup",
        reference=cosine_with_warmup,
        cases=_cosine_cases,
        run=_every_step,
        mutants=[
            Mutant(
                _warmup_from_zero,
                "Warmup off by one step: step 0 must already train, with base_lr / warmup_steps, "
                "and "
                "step warmup_steps - 1 reaches base_lr: lr = base_lr * (step + 1) / warmup_steps.",
            ),
            Mutant(
                _cosine_over_all_steps,
                "The cosine starts where the warmup ends: progress = (step - warmup_steps) / "
                "(total_steps - warmup_steps), so the first step after warmup uses base_lr.",
            ),
            Mutant(
                _no_warmup, "For step < warmup_steps the learning rate rises linearly to base_lr."
            ),
            Mutant(
                _cosine_without_half,
                "Cosine annealing is base_lr * (1 + cos(pi * progress)) / 2: a half period of the "
                "cosine, "
                "shifted up, from base_lr down to 0.",
            ),
            Mutant(
                _cosine_not_shifted,
                "The cosine is not shifted up: base_lr * cos(pi * progress) ends at -base_lr, "
                "a negative learning rate. Cosine annealing is base_lr * (1 + cos(pi * "
                "progress)) / 2, from base_lr down to 0.",
            ),
        ],
    )
)


# ---- optimization.l1_penalty --------------------------------------------------------------------

def l1_penalty(w: torch.Tensor, lam: float) -> torch.Tensor:
    """The L1 penalty lam * sum |w| of a weight tensor, a differentiable scalar.
    """
    return lam * w.abs().sum()


def _l1_cases() -> list[Case]:
    g = torch.Generator().manual_seed(53)
    cases = [Case((torch.tensor([1.0, -2.0, 0.5]), 0.1), label="w = [1., -2., 0.5], lam = 0.1")]
    for shape, lam in [((4, 5), 0.01), ((10,), 1.0), ((3, 2, 2), 0.003)]:
        cases.append(
            Case(
                (torch.randn(shape, generator=g), lam),
                label=f"random w of shape {shape}, lam = {lam}",
            )
        )
    return cases


def _l1_squared(w, lam):
    return lam * w.pow(2).sum()


def _l1_mean(w, lam):
    return lam * w.abs().mean()


def _l1_no_abs(w, lam):
    return lam * w.sum()


def _l1_half(w, lam):
    return lam / 2 * w.abs().sum()


def _l1_norm(w, lam):
    return lam * w.norm()


def _l1_python_number(w, lam):
    return (lam * w.abs().sum()).item()


register(
    Exercise(
        id="optimization.l1_penalty",
        reference=l1_penalty,
        cases=_l1_cases,
        run=call_with_grad,
        mutants=[
            Mutant(_l1_python_number, PYTHON_NUMBER_HINT),
            Mutant(
                _l1_squared,
                "That is the L2 penalty (squares). L1 sums absolute values: lam * w.abs().sum().",
            ),
            Mutant(
                _l1_mean,
                "Sum over the weights, don't average: the penalty must not depend on how they are "
                "grouped.",
            ),
            Mutant(
                _l1_no_abs,
                "Take the absolute value of each weight before summing: lam * w.abs().sum().",
            ),
            Mutant(
                _l1_half,
                "No factor 1/2 in the L1 penalty (that convention belongs to L2): lam * sum |w|.",
            ),
            Mutant(
                _l1_norm, "w.norm() is the Euclidean (L2) norm, not the sum of absolute values."
            ),
        ],
    )
)


# ---- optimization.soft_threshold: the proximal step of L1 ---------------------------------------

def soft_threshold(w: torch.Tensor, threshold: float) -> torch.Tensor:
    """Shrink each weight towards 0 by `threshold`, setting to exactly 0 those
    within it.
    """
    return torch.sign(w) * torch.clamp(w.abs() - threshold, min=0)


def _soft_cases() -> list[Case]:
    g = torch.Generator().manual_seed(54)
    cases = [
        Case(
            (torch.tensor([1.0, -0.05, 0.2, -0.5, 0.0]), 0.1),
            label="w = [1., -0.05, 0.2, -0.5, 0.], threshold = 0.1",
        )
    ]
    for shape, t in [((20,), 0.3), ((4, 5), 0.05), ((6,), 2.0)]:
        cases.append(
            Case(
                (torch.randn(shape, generator=g), t),
                label=f"random w of shape {shape}, threshold = {t}",
            )
        )
    return cases


def _soft_relu(w, threshold):
    return torch.relu(w - threshold)


def _soft_subgradient(w, threshold):
    return w - threshold * torch.sign(w)


def _soft_hard(w, threshold):
    return w * (w.abs() > threshold)


register(
    Exercise(
        id="optimization.soft_threshold",
        reference=soft_threshold,
        cases=_soft_cases,
        mutants=[
            Mutant(
                _soft_relu,
                "Negative weights must shrink towards 0 too: sign(w) * max(|w| - threshold, 0).",
            ),
            Mutant(
                _soft_subgradient,
                "That is the (sub)gradient step: a weight smaller than the threshold crosses zero "
                "instead of "
                "stopping at it. Clip: sign(w) * max(|w| - threshold, 0).",
            ),
            Mutant(
                _soft_hard,
                "That is hard thresholding: the weights above the threshold must also shrink by "
                "it.",
            ),
        ],
    )
)
