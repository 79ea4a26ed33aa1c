"""Exercises of chapter 10, Regularized autoencoders.

The notebook: `exercises/10_regularized_autoencoders.ipynb`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course_lib.exercises import PYTHON_NUMBER_HINT
from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


# ---- regularized.sparsity_kl -------------------------------------------------------------------

def sparsity_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) for mean activations
    rho_hat (K,).
    """
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log(
        (1 - rho) / (1 - rho_hat)
    )
    return kl.sum()  # one term per hidden unit, summed


def _kl_swapped(rho, rho_hat):
    return (rho_hat * torch.log(rho_hat / rho)
            + (1 - rho_hat) * torch.log((1 - rho_hat) / (1 - rho))).sum()


def _kl_mean(rho, rho_hat):
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).mean()


def _kl_one_term(rho, rho_hat):
    return (rho * torch.log(rho / rho_hat)).sum()


def _kl_sign(rho, rho_hat):
    return (rho * torch.log(rho_hat / rho)
            + (1 - rho) * torch.log((1 - rho_hat) / (1 - rho))).sum()


def _kl_cases() -> list[Case]:
    g = torch.Generator().manual_seed(100)
    cases = [
        Case((0.05, torch.tensor([0.2])), label="rho = 0.05, rho_hat = [0.2] (answer 0.093943)")
    ]
    for rho, k in [(0.05, 8), (0.1, 3), (0.3, 16), (0.8, 5)]:
        rho_hat = 0.02 + 0.96 * torch.rand(k, generator=g)
        cases.append(
            Case((rho, rho_hat), label=f"rho = {rho}, rho_hat random in (0, 1) of shape ({k},)")
        )
    cases.append(
        Case((0.2, torch.full((4,), 0.2)), label="rho = 0.2, rho_hat = [0.2] * 4 (answer 0)")
    )
    return cases


def _kl_python_number(rho, rho_hat):
    return sparsity_kl(rho, rho_hat).item()


register(Exercise(
    id="regularized.sparsity_kl",
    reference=sparsity_kl,
    cases=_kl_cases,
    run=call_with_grad,
    atol=1e-6,
    rtol=1e-5,
    mutants=[
        Mutant(_kl_python_number, PYTHON_NUMBER_HINT),
        Mutant(_kl_swapped,
               "KL arguments swapped: the penalty is KL(rho || rho_hat) = rho log(rho / rho_hat) "
               "+ (1 - rho) log((1 - rho) / (1 - rho_hat)); KL is not symmetric."),
        Mutant(_kl_mean, "Sum over the hidden units, not mean: one KL term per unit, added up."),
        Mutant(_kl_one_term,
               "A Bernoulli has two outcomes: add the (1 - rho) log((1 - rho) / (1 - rho_hat)) "
               "term for 'inactive'."),
        Mutant(_kl_sign,
               "Sign: KL(rho || rho_hat) = rho log(rho / rho_hat) + ..., which is >= 0; "
               "you have the ratios upside down."),
    ],
))


# ---- regularized.masking_noise -----------------------------------------------------------------

def masking_noise(x: torch.Tensor, u: torch.Tensor, p: float) -> torch.Tensor:
    """A copy of x with the entries where u < p set to 0 (u uniform in [0, 1),
    x's shape).
    """
    return x * (u >= p).to(x.dtype)  # a new tensor: x itself is left untouched


def _mask_in_place(x, u, p):
    x[u < p] = 0.0
    return x


def _mask_inverted(x, u, p):
    return x * (u < p).to(x.dtype)


def _mask_rescaled(x, u, p):
    return x * (u >= p).to(x.dtype) / (1 - p)


def _mask_ones(x, u, p):
    out = x.clone()
    out[u < p] = 1.0
    return out


def _mask_cases() -> list[Case]:
    g = torch.Generator().manual_seed(101)
    cases = []
    for n, d, p in [(4, 6, 0.25), (8, 64, 0.5), (3, 5, 0.1), (2, 3, 0.9)]:
        x = 0.1 + torch.rand(n, d, generator=g)
        cases.append(
            Case(
                (x, torch.rand(n, d, generator=g), p),
                label=f"x of shape ({n}, {d}) with no zeros, u uniform of that shape, p = {p}",
            )
        )
    return cases


def _run_mask(solution: Any, case: Case) -> dict[str, Any]:
    x, u, p = case.args
    x_before = x.clone()
    out = solution(x, u, p)
    return {
        "output": out,
        "x after the call (must be unchanged)": x_before if torch.equal(x, x_before) else x,
    }


register(Exercise(
    id="regularized.masking_noise",
    reference=masking_noise,
    cases=_mask_cases,
    run=_run_mask,
    mutants=[
        Mutant(_mask_in_place,
               "Corrupt a copy, not x itself: the clean x is still needed as the target. "
               "Return x * mask (a new tensor) instead of assigning into x."),
        Mutant(_mask_inverted, "Zero the entries where u < p (probability p), keep the others."),
        Mutant(_mask_rescaled,
               "Masking noise does not rescale the survivors (that is inverted dropout): "
               "just set the masked entries to 0."),
        Mutant(_mask_ones, "Masked entries are set to 0, not 1."),
    ],
))


# ---- regularized.denoising_loss ----------------------------------------------------------------

def denoising_loss(model: nn.Module, x: torch.Tensor, corrupt) -> torch.Tensor:
    """Reconstruction loss of model(corrupt(x)) against the CLEAN x: sum over
    dims, batch mean.
    """
    x_tilde = corrupt(x)  # only the input is corrupted
    x_hat = model(x_tilde)
    return ((x_hat - x) ** 2).sum(dim=1).mean()


def _denoise_target_corrupted(model, x, corrupt):
    x_tilde = corrupt(x)
    return ((model(x_tilde) - x_tilde) ** 2).sum(dim=1).mean()


def _denoise_clean_input(model, x, corrupt):
    return ((model(x) - x) ** 2).sum(dim=1).mean()


def _denoise_twice(model, x, corrupt):
    return ((model(corrupt(x)) - corrupt(x)) ** 2).sum(dim=1).mean()


def _denoise_mean(model, x, corrupt):
    return ((model(corrupt(x)) - x) ** 2).mean()


class _Corruption:
    """Deterministic masking with its own generator, reset per case (so calls are comparable)."""

    def __init__(self, seed: int, p: float) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.p = p
        self.__name__ = f"corrupt (masking noise, p = {p})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.rand(x.shape, generator=self.generator) >= self.p
        return x * keep.to(x.dtype)


def _denoise_cases() -> list[Case]:
    return [Case((seed, d, k, n, p),
                 label=f"a ({d} -> {k} -> {d}) autoencoder, x of shape ({n}, {d}), corrupt = "
                       f"masking noise with p = {p} (fresh noise at every call)")
            for seed, (d, k, n, p) in enumerate([(8, 3, 5, 0.3), (6, 2, 16, 0.5), (10, 4, 3, 0.2)])]


def _run_denoise(solution: Any, case: Case) -> dict[str, Any]:
    """The loss and its gradient with respect to the decoder's weight."""
    seed, d, k, n, p = case.args
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, k), nn.Sigmoid(), nn.Linear(k, d))
    x = torch.rand(n, d, generator=torch.Generator().manual_seed(seed + 50))
    loss = solution(model, x, _Corruption(seed + 200, p))
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        return {"loss": loss}
    grad = (
        torch.autograd.grad(loss, model[2].weight, allow_unused=True)[0]
        if loss.requires_grad
        else None
    )
    return {"loss": loss.detach(), "gradient wrt the decoder weight": grad}


register(Exercise(
    id="regularized.denoising_loss",
    reference=denoising_loss,
    cases=_denoise_cases,
    run=_run_denoise,
    atol=1e-5,
    rtol=1e-5,
    mutants=[
        Mutant(_denoise_target_corrupted,
               "Corrupting the target as well: compare the reconstruction with the CLEAN x; only "
               "the model's input is corrupted."),
        Mutant(_denoise_clean_input,
               "Feed the corrupted input to the model: x_hat = model(corrupt(x))."),
        Mutant(_denoise_twice,
               "Call corrupt once: each call draws fresh noise, so corrupt(x) twice gives two "
               "different inputs; and the target is the clean x."),
        Mutant(_denoise_mean,
               "The course's convention: sum over each example's dimensions, then average over "
               "the batch (.sum(dim=1).mean())."),
    ],
))


# ---- regularized.contractive_sigmoid -------------------------------------------------------------

def contractive_sigmoid(
    W: torch.Tensor, b: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Batch mean of ||J||_F^2 for h = sigmoid(x W^T + b); W (K, D), b (K,), x
    (N, D).
    """
    h = torch.sigmoid(x @ W.T + b)  # (N, K)
    row_norms = (W**2).sum(dim=1)  # (K,) ||W_j||^2, row j feeds unit j
    return ((h * (1 - h)) ** 2 * row_norms).sum(dim=1).mean()


def _contractive_not_squared(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    jac = (h * (1 - h))[:, :, None] * W[None]  # (N, K, D)
    return jac.flatten(1).norm(dim=1).mean()


def _contractive_h(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    return (h**2 * (W**2).sum(dim=1)).sum(dim=1).mean()


def _contractive_columns(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    col = (W**2).sum(dim=0)
    return ((h * (1 - h)) ** 2 * col[: h.shape[1]]).sum(dim=1).mean()


def _contractive_sum_batch(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    return ((h * (1 - h)) ** 2 * (W**2).sum(dim=1)).sum()


def _contractive_derivative_not_squared(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    return ((h * (1 - h)) * (W**2).sum(dim=1)).sum(dim=1).mean()


def _contractive_cases() -> list[Case]:
    g = torch.Generator().manual_seed(102)
    cases = []
    for k, d, n in [(3, 5, 4), (4, 8, 10), (2, 3, 1), (6, 4, 7)]:
        cases.append(Case((torch.randn(k, d, generator=g), torch.randn(k, generator=g),
                           torch.rand(n, d, generator=g)),
                          label=f"W of shape ({k}, {d}), b of shape ({k},), x of shape ({n}, {d})"))
    return cases


def _contractive_python_number(W, b, x):
    return contractive_sigmoid(W, b, x).item()


register(Exercise(
    id="regularized.contractive_sigmoid",
    reference=contractive_sigmoid,
    cases=_contractive_cases,
    run=call_with_grad,
    atol=1e-5,
    rtol=1e-4,
    mutants=[
        Mutant(_contractive_python_number, PYTHON_NUMBER_HINT),
        Mutant(_contractive_not_squared,
               "Jacobian norm not squared: the penalty is the SQUARED Frobenius norm, the sum of "
               "the squares of all entries of J (no square root)."),
        Mutant(_contractive_h,
               "The derivative of the sigmoid is h (1 - h), not h: J = diag(h (1 - h)) W."),
        Mutant(_contractive_columns,
               "Row j of W (shape (K, D)) feeds unit j: use the row norms (W**2).sum(dim=1)."),
        Mutant(_contractive_sum_batch, "Average over the examples of the batch, do not sum."),
        Mutant(_contractive_derivative_not_squared,
               "Square the whole entry J_ji = h_j (1 - h_j) W_ji: the factor h (1 - h) is "
               "squared too."),
    ],
))
