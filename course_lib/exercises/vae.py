"""Exercises of chapter 11, Variational autoencoders.

The notebook: `exercises/11_variational_autoencoders.ipynb`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.exercises import LOGITS_HINT, PYTHON_NUMBER_HINT
from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


def _gaussians(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mu, logvar) pairs of several shapes, with log-variances far from 0."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for n, d in [(4, 2), (1, 5), (8, 3), (3, 1)]:
        pairs.append((2 * torch.randn(n, d, generator=g), 1.5 * torch.randn(n, d, generator=g)))
    return pairs


# ---- vae.reparameterize -----------------------------------------------------------------------

def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): a sample gradients can
    flow through.
    """
    return mu + torch.exp(0.5 * logvar) * eps


def _reparam_variance(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps


def _reparam_logvar_as_std(mu, logvar, eps):
    return mu + logvar * eps


def _reparam_divided(mu, logvar, eps):
    return mu + eps / torch.exp(0.5 * logvar)


def _reparam_detached(mu, logvar, eps):
    return (mu + torch.exp(0.5 * logvar) * eps).detach()


def _reparam_cases() -> list[Case]:
    g = torch.Generator().manual_seed(111)
    cases = [
        Case(
            (torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1)),
            label="mu = [[0.]], logvar = [[0.]], eps = [[1.]]",
        )
    ]
    cases.append(
        Case(
            (torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[0.5]])),
            label="mu = [[1.]], logvar = [[2.]], eps = [[0.5]]",
        )
    )
    for mu, logvar in _gaussians(11):
        eps = torch.randn(mu.shape, generator=g)
        cases.append(
            Case((mu, logvar, eps), label=f"random mu, logvar, eps of shape {tuple(mu.shape)}")
        )
    return cases


register(Exercise(
    id="vae.reparameterize",
    reference=reparameterize,
    cases=_reparam_cases,
    run=call_with_grad,
    atol=1e-5,
    rtol=1e-5,
    mutants=[
        Mutant(_reparam_variance,
               "exp(logvar) is the variance sigma^2; scale eps by the standard deviation "
               "sigma = exp(logvar / 2) = torch.exp(0.5 * logvar)."),
        Mutant(_reparam_logvar_as_std,
               "logvar is the log of the variance, not the standard deviation: "
               "sigma = torch.exp(0.5 * logvar)."),
        Mutant(_reparam_divided, "Multiply eps by sigma (z = mu + sigma * eps), do not divide."),
        Mutant(_reparam_detached,
               "The values are right but no gradient reaches mu and logvar: do not .detach() "
               "(or use torch.no_grad); the whole point of the trick is the gradient."),
    ],
))


# ---- vae.gaussian_kl ----------------------------------------------------------------------------

def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example (N,), summed over the
    latent dims.
    """
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)


def _kl_sign(mu, logvar):
    return -0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)


def _kl_mean_over_dims(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).mean(dim=1)


def _kl_std_for_var(mu, logvar):
    return 0.5 * (torch.exp(0.5 * logvar) + mu**2 - 1 - logvar).sum(dim=1)


def _kl_no_half(mu, logvar):
    return (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)


def _kl_logvar_sign(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 + logvar).sum(dim=1)


def _kl_batch_sum(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum()


def _kl_cases() -> list[Case]:
    cases = [Case((torch.zeros(2, 3), torch.zeros(2, 3)), label="mu = 0, logvar = 0, shape (2, 3)"),
             Case((torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)),
                  label="mu = [[1., 0.]], logvar = [[0., 0.]] (KL = 0.5)"),
             Case((torch.zeros(1, 1), torch.ones(1, 1)), label="mu = [[0.]], logvar = [[1.]]")]
    cases += [Case((mu, logvar), label=f"random mu, logvar of shape {tuple(mu.shape)}")
              for mu, logvar in _gaussians(12)]
    return cases


register(Exercise(
    id="vae.gaussian_kl",
    reference=gaussian_kl,
    cases=_kl_cases,
    run=call_with_grad,
    atol=1e-5,
    rtol=1e-5,
    mutants=[
        Mutant(_kl_sign, "KL sign: a KL divergence is never negative; it is "
                         "+0.5 * sum(exp(logvar) + mu^2 - 1 - logvar)."),
        Mutant(_kl_mean_over_dims,
               "Sum over the latent dimensions (dim=1), do not average: the KL of independent "
               "dimensions is the sum of their KLs."),
        Mutant(_kl_std_for_var,
               "The formula needs the variance sigma^2 = exp(logvar), not the standard "
               "deviation exp(logvar / 2)."),
        Mutant(_kl_no_half, "The closed form has a factor 1/2 in front of the sum."),
        Mutant(_kl_logvar_sign,
               "Sign of logvar: the closed form subtracts it, 0.5 * sum(exp(logvar) + mu^2 - 1 "
               "- logvar), where -logvar is -log sigma^2; with + logvar the KL is wrong "
               "wherever logvar != 0."),
        Mutant(_kl_batch_sum,
               "Return one KL per example, shape (N,): sum over dim=1 only, not over the batch."),
    ],
))


# ---- vae.negative_elbo --------------------------------------------------------------------------

def negative_elbo(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
) -> torch.Tensor:
    """Batch mean of BCE(logits, x) summed over pixels + beta * KL(q || N(0,
    I)): a scalar.
    """
    reconstruction = F.binary_cross_entropy_with_logits(
        logits, x, reduction="none"
    ).sum(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (reconstruction + beta * kl).mean()


def _elbo_pixel_mean(logits, x, mu, logvar, beta=1.0):
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (reconstruction + beta * kl).mean()


def _elbo_minus_kl(logits, x, mu, logvar, beta=1.0):
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (reconstruction - beta * kl).mean()


def _elbo_beta_on_reconstruction(logits, x, mu, logvar, beta=1.0):
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (beta * reconstruction + kl).mean()


def _elbo_bce_on_probabilities(logits, x, mu, logvar, beta=1.0):
    reconstruction = F.binary_cross_entropy(logits.clamp(1e-6, 1 - 1e-6), x,
                                            reduction="none").sum(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (reconstruction + beta * kl).mean()


def _elbo_bce_on_logits(logits, x, mu, logvar, beta=1.0):
    reconstruction = F.binary_cross_entropy(logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(dim=1)
    return (reconstruction + beta * kl).mean()


def _elbo_python_number(logits, x, mu, logvar, beta=1.0):
    return negative_elbo(logits, x, mu, logvar, beta).item()


def _elbo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(113)
    cases = []
    for n, d, k, beta in [(4, 6, 2, 1.0), (1, 3, 1, 1.0), (8, 10, 3, 4.0), (5, 4, 2, 0.1)]:
        logits, x = 2 * torch.randn(n, d, generator=g), torch.rand(n, d, generator=g)
        mu, logvar = torch.randn(n, k, generator=g), torch.randn(n, k, generator=g)
        cases.append(Case((logits, x, mu, logvar), {"beta": beta},
                          label=f"{n} examples of {d} pixels in [0, 1], latent {k}, beta={beta}"))
    return cases


register(
    Exercise(
        id="vae.negative_elbo",
        reference=negative_elbo,
        cases=_elbo_cases,
        run=call_with_grad,
        atol=1e-4,
        rtol=1e-5,
        mutants=[
            Mutant(
                _elbo_pixel_mean,
                "Sum the reconstruction term over the pixels of an example (it is -log p(x|z) "
                "of the whole image); averaging over pixels shrinks it and overweights the KL.",
            ),
            Mutant(
                _elbo_minus_kl,
                "KL sign: the negative ELBO is reconstruction PLUS beta * KL (the ELBO subtracts "
                "the KL, so its negative adds it).",
            ),
            Mutant(
                _elbo_beta_on_reconstruction, "beta multiplies the KL term, not the reconstruction."
            ),
            Mutant(
                _elbo_bce_on_probabilities,
                "Logits vs probabilities: the decoder outputs logits, and clamping them into "
                "[0, 1] does not make them probabilities. Use "
                "F.binary_cross_entropy_with_logits (or apply a sigmoid first).",
            ),
            Mutant(_elbo_bce_on_logits, LOGITS_HINT),
            Mutant(_elbo_python_number, PYTHON_NUMBER_HINT),
        ],
    )
)


# ---- vae.interpolate ----------------------------------------------------------------------------

def interpolate(
    z_a: torch.Tensor, z_b: torch.Tensor, steps: int
) -> torch.Tensor:
    """`steps` codes evenly spaced on the segment from z_a to z_b (both ends
    included): (steps, d).
    """
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype).unsqueeze(1)  # (steps, 1)
    return (1 - t) * z_a + t * z_b


def _interp_no_end(z_a, z_b, steps):
    t = torch.arange(steps, dtype=z_a.dtype).unsqueeze(1) / steps
    return (1 - t) * z_a + t * z_b


def _interp_reversed(z_a, z_b, steps):
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype).unsqueeze(1)
    return t * z_a + (1 - t) * z_b


def _interp_no_unsqueeze(z_a, z_b, steps):
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype)
    return (1 - t) * z_a + t * z_b


def _interp_list(z_a, z_b, steps):
    return [(1 - t) * z_a + t * z_b for t in torch.linspace(0, 1, steps).tolist()]


def _interp_cases() -> list[Case]:
    g = torch.Generator().manual_seed(114)
    cases = [Case((torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]), 3),
                  label="z_a = [0., 0.], z_b = [1., 2.], steps = 3")]
    for d, steps in [(2, 10), (8, 5), (1, 2)]:
        cases.append(Case((torch.randn(d, generator=g), torch.randn(d, generator=g), steps),
                          label=f"random z_a, z_b of shape ({d},), steps = {steps}"))
    return cases


register(Exercise(
    id="vae.interpolate",
    reference=interpolate,
    cases=_interp_cases,
    mutants=[
        Mutant(_interp_no_end, "Include both ends: the first code is z_a and the last is z_b "
                               "(torch.linspace(0, 1, steps))."),
        Mutant(_interp_reversed, "The path starts at z_a (t = 0) and ends at z_b (t = 1)."),
        Mutant(_interp_no_unsqueeze,
               "Missing unsqueeze: t = torch.linspace(0, 1, steps) has shape (steps,) and z_a "
               "(d,), which broadcasting lines up in the same dimension. Make t a column, "
               "t.unsqueeze(1) of shape (steps, 1), so that (1 - t) * z_a + t * z_b is "
               "(steps, d)."),
        Mutant(_interp_list,
               "Return one tensor of shape (steps, d), not a list of codes: torch.stack them, "
               "or broadcast t.unsqueeze(1) against z_a and z_b."),
    ],
))
