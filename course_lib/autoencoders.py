"""Autoencoders: an encoder/decoder module, reconstruction losses, corruption and the penalties of
regularized autoencoders.

Introduced in chapter 9 (autoencoders); chapter 10 adds corruption (denoising), the sparsity KL and
the contractive penalty; chapters 11 (variational autoencoders) and 12 (autoencoders at work) build
on the same `Autoencoder`. Training goes through the course's one training function,
`course_lib.training.fit`/`train`, with the input as the target (`y=None`, or
`Run(target="input")`), `transform=` for a fresh corruption of every batch and `penalties=` for a
term that needs the model and the batch. This module holds no training loop.

One loss convention everywhere: a reconstruction loss is summed over the dimensions of one example
and averaged over the batch (so that chapter 11's ELBO terms share its scale). Figures compared
with a per-pixel mean squared error say so and use `pixel_mse`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks
from course_lib.modes import eval_mode
from course_lib.training import Penalty

__all__ = [
    "Autoencoder",
    "fully_connected_autoencoder",
    "reconstruction_loss",
    "reconstruction_errors",
    "pixel_mse",
    "corrupt",
    "sparsity_kl",
    "contractive_penalty",
    "sparsity_term",
    "l1_code_term",
    "contractive_term",
    "gaussian_kl",
    "VariationalAutoencoder",
    "fully_connected_vae",
    "elbo_loss",
]

def _check_batch(name: str, x: object, dims: int | None = 2) -> torch.Tensor:
    """A non-empty floating-point tensor with `dims` dimensions (None: any number >= 1)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}: use x.float()"
        )
    if dims is not None and x.dim() != dims:
        expected = "(N, D): a batch of flattened examples" if dims == 2 else f"{dims} dimensions"
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(x.shape)}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{name} is an empty batch (shape {tuple(x.shape)}): expected at least one example"
        )
    return x


class Autoencoder(nn.Module):
    """An encoder E_phi: X -> Z and a decoder D_theta: Z -> X; `forward(x)` is D(E(x)).

    `encode(x)` gives the code z, `decode(z)` the reconstruction x_hat. Any two modules will do; for
    the fully connected pairs of the chapters use `fully_connected_autoencoder`. Chapter 9.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = E_phi(x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction x_hat = D_theta(z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _stack(
    sizes: list[int], activation: Callable[[], nn.Module], last: Callable[[], nn.Module]
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        layers.append(activation() if i < len(sizes) - 2 else last())
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


def fully_connected_autoencoder(
    sizes: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    code_activation: Callable[[], nn.Module] = nn.Identity,
    output_activation: Callable[[], nn.Module] = nn.Identity,
) -> Autoencoder:
    """A fully connected autoencoder whose decoder mirrors the encoder.

    `sizes` lists the encoder's widths from the input to the code, e.g. `[64, 128, 8]`; the decoder
    has the reversed widths `[8, 128, 64]`. `activation` (a module class or factory) follows every
    hidden layer; `nn.Identity` makes the whole autoencoder linear. `code_activation` follows the
    encoder's last layer (`nn.Sigmoid` for the sparse and contractive autoencoders of chapter 10,
    whose units must lie in (0, 1)); `output_activation` follows the decoder's last layer.
    Identity layers are left out, so `sizes=[64, k]` with `code_activation=nn.Sigmoid` gives the
    encoder `Sequential(Linear(64, k), Sigmoid())`. Chapter 9.
    """
    sizes = checks.positive_ints("sizes (input ... code)", sizes, min_length=2)
    encoder = _stack(sizes, activation, code_activation)
    decoder = _stack(sizes[::-1], activation, output_activation)
    return Autoencoder(encoder, decoder)


def reconstruction_loss(
    x_hat: torch.Tensor, x: torch.Tensor, kind: str = "squared"
) -> torch.Tensor:
    """Reconstruction loss, summed over each example's dimensions, batch-averaged.

    `kind="squared"`: sum_d (x_hat_d - x_d)^2, the squared Euclidean distance d(x, x_hat).
    `kind="bce"`: binary cross-entropy for targets in [0, 1], with `x_hat` the decoder's *logits*
    (before a sigmoid), computed stably by `F.binary_cross_entropy_with_logits`.
    Divide by the number of dimensions to get a per-pixel figure (`pixel_mse`). Chapter 9.
    """
    _check_batch("x_hat", x_hat, dims=None)
    _check_batch("x", x, dims=None)
    if x_hat.shape != x.shape:
        raise ValueError(
            f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}"
        )
    if kind == "squared":
        per_element = (x_hat - x) ** 2
    elif kind == "bce":
        per_element = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
    else:
        raise ValueError(f"kind must be 'squared' or 'bce', got {kind!r}")
    return per_element.reshape(len(x), -1).sum(dim=1).mean()


@torch.no_grad()
def reconstruction_errors(
    model: nn.Module, X: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-example squared reconstruction error sum_d (x_hat_d - x_d)^2, shape (N,).

    The model runs in eval mode without gradients (its mode is restored). `target` is the clean
    data when `X` is corrupted; by default the target is `X` itself. Chapter 9.
    """
    _check_batch("X", X, dims=None)
    target = X if target is None else _check_batch("target", target, dims=None)
    if target.shape != X.shape:
        raise ValueError(
            f"target must have the shape of X {tuple(X.shape)}, got {tuple(target.shape)}"
        )
    with eval_mode(model):
        x_hat = model(X)
    return ((x_hat - target) ** 2).reshape(len(X), -1).sum(dim=1)


def pixel_mse(model: nn.Module, X: torch.Tensor, target: torch.Tensor | None = None) -> float:
    """Mean squared reconstruction error per pixel (averaged over examples and pixels).

    The per-pixel scale of TOPICS-style tables; `reconstruction_loss` sums over pixels instead.
    Chapter 9.
    """
    errors = reconstruction_errors(model, X, target)
    return float(errors.mean() / X[0].numel())


def corrupt(
    x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A corrupted copy of `x`; `x` itself is left untouched.

    `kind="gaussian"`: x + level * N(0, 1) noise (level is the standard deviation, >= 0).
    `kind="masking"`: each entry set to 0 independently with probability `level` (in [0, 1]).
    `generator` makes the noise reproducible; without it torch's global generator is used, so a
    training `transform=lambda x: corrupt(x, "masking", 0.3)` draws fresh noise for every batch.
    Chapter 10.
    """
    _check_batch("x", x, dims=None)
    level = checks.number("level", level)
    if kind == "gaussian":
        if not level >= 0:
            raise ValueError(
                f"the Gaussian noise level (a standard deviation) must be >= 0, got {level!r}"
            )
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + level * noise
    if kind == "masking":
        if not 0 <= level <= 1:
            raise ValueError(f"the masking level (a probability) must be in [0, 1], got {level!r}")
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
        return x * keep.to(x.dtype)
    raise ValueError(f"kind must be 'gaussian' or 'masking', got {kind!r}")


SPARSITY_EPS = 1e-6  # rho_hat is clamped to [SPARSITY_EPS, 1 - SPARSITY_EPS] inside sparsity_kl


def sparsity_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """`sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j))`, the sparsity penalty.

    KL = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)) per hidden unit, with
    `rho` the target mean activation (a float in (0, 1)) and `rho_hat` the units' mean activations
    over a batch (a 1-D tensor in (0, 1)). For numerical safety `rho_hat` is clamped to
    [1e-6, 1 - 1e-6], so a dead or saturated unit gives a large finite penalty, not infinity
    (the gradient is zero outside the clamp range). It is computed in float32 when `rho_hat` is
    float16 or bfloat16 (whose 1 - 1e-6 rounds to 1). Chapter 10.
    """
    rho = checks.number("rho", rho, minimum=0, maximum=1, exclusive_minimum=True,
                        exclusive_maximum=True,
                        wanted="a number in (0, 1) (a target mean activation)")
    _check_batch("rho_hat", rho_hat, dims=1)
    # in float32 at least: in float16 or bfloat16, 1 - 1e-6 rounds to 1, so the clamp would
    # leave log(0) = inf; a half-precision input gives a float32 penalty (finite)
    rho_hat = rho_hat.to(torch.promote_types(rho_hat.dtype, torch.float32))
    rho_hat = rho_hat.clamp(SPARSITY_EPS, 1 - SPARSITY_EPS)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.sum()


def _linear_sigmoid(encoder: nn.Module) -> nn.Linear | None:
    """The Linear layer when `encoder` is exactly Linear followed by Sigmoid (ignoring Flatten)."""
    modules = [encoder] if not isinstance(encoder, nn.Sequential) else list(encoder)
    modules = [m for m in modules if not isinstance(m, (nn.Flatten, nn.Identity))]
    kinds = [type(m) for m in modules]
    linear = modules[0] if kinds == [nn.Linear, nn.Sigmoid] else None
    return linear if isinstance(linear, nn.Linear) else None


_PATHS = ("auto", "analytic", "autograd")


def _check_path(path: object) -> str:
    if path not in _PATHS:
        raise ValueError(f"path must be 'auto', 'analytic' or 'autograd', got {path!r}")
    return path


def contractive_penalty(encoder: nn.Module, x: torch.Tensor, path: str = "auto") -> torch.Tensor:
    """Batch mean of `||J_E(x_i)||_F^2`, the encoder Jacobian's squared Frobenius norm.

    Differentiable with respect to the encoder's parameters (add it to the loss, Rifai et al. 2011).
    `path="analytic"`: for an encoder that is one `nn.Linear` followed by `nn.Sigmoid`,
    h = sigmoid(W x + b) has J = diag(h (1 - h)) W, so
    `||J||_F^2 = sum_j (h_j (1 - h_j))^2 ||W_j||^2`, with `W_j` the j-th row of W.
    `path="autograd"`: any encoder, the per-example Jacobian by `torch.func.jacrev` and `vmap`
    (the encoder must treat examples independently: no batch normalization in training mode).
    `path="auto"` takes the analytic path when it applies. `x` has shape (N, D). Chapter 10.
    """
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"encoder must be an nn.Module, got {type(encoder).__name__}")
    _check_batch("x", x)
    _check_path(path)
    linear = _linear_sigmoid(encoder)
    if path == "analytic" and linear is None:
        raise ValueError(
            "the analytic path needs an encoder that is one nn.Linear followed by nn.Sigmoid; "
            "use path='autograd' for any other encoder"
        )
    if linear is not None and path != "autograd":
        h = torch.sigmoid(F.linear(x, linear.weight, linear.bias))  # (N, K)
        row_norms = (linear.weight**2).sum(dim=1)  # (K,) ||W_j||^2
        return ((h * (1 - h)) ** 2 * row_norms).sum(dim=1).mean()
    from torch.func import jacrev, vmap

    def encode_one(x_i: torch.Tensor) -> torch.Tensor:  # (D,) -> (K,)
        return encoder(x_i.unsqueeze(0)).squeeze(0)

    jacobians = vmap(jacrev(encode_one))(x)  # (N, K, D)
    return (jacobians**2).reshape(len(x), -1).sum(dim=1).mean()


def _check_weight(weight: float) -> float:
    return checks.number("weight", weight, minimum=0)


def sparsity_term(rho: float, weight: float) -> Penalty:
    """`penalties=` entry: weight * sparsity_kl(rho, the batch's mean code activation).

    The returned function takes `(model, x_batch)`; the model needs `encode` with codes in (0, 1).
    Chapter 10.
    """
    weight = _check_weight(weight)
    sparsity_kl(rho, torch.full((1,), 0.5))  # validates rho now, not in the middle of training

    def penalty(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return weight * sparsity_kl(rho, _encode(model, x).mean(dim=0))

    return penalty


def _encode(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The codes of `x`: a penalty's model is an autoencoder (it has `encode`)."""
    encode = getattr(model, "encode", None)
    if not callable(encode):
        raise TypeError(f"a code penalty needs an autoencoder, got {type(model).__name__}")
    return encode(x)


def _encoder(model: nn.Module) -> nn.Module:
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"a contractive penalty needs an autoencoder, got {type(model).__name__}")
    return encoder


def l1_code_term(weight: float) -> Penalty:
    """`penalties=` entry: weight * batch mean of `||z||_1`, an L1 penalty on codes. Chapter 10."""
    weight = _check_weight(weight)

    def penalty(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return weight * _encode(model, x).abs().sum(dim=1).mean()

    return penalty


def contractive_term(weight: float, path: str = "auto") -> Penalty:
    """`penalties=` entry: weight * contractive_penalty(model.encoder, x_batch). Chapter 10."""
    weight = _check_weight(weight)
    _check_path(path)  # refused when written, not at the first batch

    def penalty(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return weight * contractive_penalty(_encoder(model), x, path=path)

    return penalty


# ---- Variational autoencoders (chapter 11) ---------------------------------------------------
# A VAE's encoder gives a Gaussian q(z|x) = N(mu, diag exp(logvar)) instead of one code; the
# decoder gives p(x|z); training maximises the ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)).

_LIKELIHOODS = ("bce", "squared")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example, summed over the latent dimensions.

    Closed form: 0.5 * sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j). `mu` and `logvar` must have
    the same shape (N, D) (no broadcasting: a mismatch is an error); the result has shape (N,).
    More generally the last dimension is the latent one: shape (..., D) gives (...). `logvar` is
    the log-variance log sigma^2, not sigma nor log sigma. Chapter 11.
    """
    _check_batch("mu", mu, dims=None)
    _check_batch("logvar", logvar, dims=None)
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape (N, D), got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )
    return 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(dim=-1)


class VariationalAutoencoder(nn.Module):
    """A VAE (Kingma and Welling 2014): Gaussian encoder q(z|x), decoder p(x|z), prior N(0, I).

    `encoder` maps x (N, D) to 2 * `latent_dim` numbers per example, read as (mu, logvar);
    `decoder` maps z (N, latent_dim) to the parameters of p(x|z): logits of independent
    Bernoullis for `likelihood="bce"` (pixels in [0, 1]), the mean of a Gaussian for
    `likelihood="squared"`. `forward(x)` returns the tuple `(x_hat, mu, logvar)` with x_hat the
    decoder's output at a reparameterized sample z, which is what `elbo_loss` takes. Chapter 11.
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, likelihood: str = "bce"
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        latent_dim = checks.integer("latent_dim", latent_dim, minimum=1)
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be 'bce' or 'squared', got {likelihood!r}")
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.likelihood = latent_dim, likelihood

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each of shape (N, latent_dim)."""
        h = self.encoder(x)
        if h.dim() != 2 or h.shape[1] != 2 * self.latent_dim:
            raise ValueError(
                f"the encoder must output (N, 2 * latent_dim) = (N, {2 * self.latent_dim}) "
                f"numbers, got shape {tuple(h.shape)}"
            )
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): a sample that gradients flow through."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * eps  # sigma = exp(logvar / 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for codes z (N, latent_dim): logits for "bce", means otherwise."""
        return self.decoder(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z): sigmoid of the logits for "bce", the decoder's output otherwise."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bce" else out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples: the mean of p(x|z) at z drawn from the prior N(0, I), shape (n, D)."""
        n = checks.integer("n", n, minimum=1)
        like = next(self.parameters())  # the prior's draws in the model's dtype and device
        z = torch.randn(
            n, self.latent_dim, generator=generator, dtype=like.dtype, device=like.device
        )
        with eval_mode(self):
            return self.mean_image(z)


def fully_connected_vae(
    sizes: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    likelihood: str = "bce",
) -> VariationalAutoencoder:
    """A fully connected VAE whose decoder mirrors the encoder.

    `sizes` lists the widths from the input to the latent dimension, e.g. `[64, 128, 8]`: the
    encoder is 64 -> 128 -> 2 * 8 (mu and logvar), the decoder 8 -> 128 -> 64 (no output
    activation: logits for "bce", means for "squared"). Chapter 11.
    """
    sizes = checks.positive_ints("sizes (input ... latent)", sizes, min_length=2)
    encoder = _stack(sizes[:-1] + [2 * sizes[-1]], activation, nn.Identity)
    decoder = _stack(sizes[::-1], activation, nn.Identity)
    return VariationalAutoencoder(encoder, decoder, sizes[-1], likelihood)


def elbo_loss(
    output: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    x: torch.Tensor,
    beta: float = 1.0,
    likelihood: str = "bce",
    reduction: str = "mean",
    free_bits: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The negative ELBO and its two terms, `{"loss", "reconstruction", "kl"}`.

    `output` is a VAE's `(x_hat, mu, logvar)`. reconstruction = -log p(x|z) summed over the
    dimensions of an example (binary cross-entropy on logits for "bce"; for "squared",
    sum_d (x_hat_d - x_d)^2, the Gaussian negative log-likelihood with variance 1/2 up to a
    constant); kl = `gaussian_kl(mu, logvar)`; loss = reconstruction + beta * kl (beta = 1 is
    the ELBO, other values the beta-VAE of Higgins et al. 2017). `reduction="mean"` averages over
    the batch (scalars, what `cl.fit`'s `loss_fn` takes: use `functools.partial` or a lambda for
    other arguments); `"none"` keeps one value per example, shape (N,).
    `free_bits` = lambda > 0 (Kingma et al. 2016) makes the KL of each latent dimension, averaged
    over the batch, cost nothing below lambda nats: loss = reconstruction + beta * sum_j
    max(lambda, mean_batch KL_j), a batch-level quantity, so it needs `reduction="mean"`; the
    logged "kl" stays the true KL. Chapter 11.
    """
    if not (isinstance(output, tuple) and len(output) == 3):
        raise TypeError(
            "output must be a VAE's (x_hat, mu, logvar) tuple, got "
            f"{type(output).__name__}; pass the model's output, not a tensor"
        )
    x_hat, mu, logvar = output
    _check_batch("x_hat", x_hat, dims=None)
    _check_batch("x", x, dims=None)
    if x_hat.shape != x.shape:
        raise ValueError(
            f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}"
        )
    beta = checks.number("beta", beta, minimum=0)
    if likelihood == "bce":
        per_element = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
    elif likelihood == "squared":
        per_element = (x_hat - x) ** 2
    else:
        raise ValueError(f"likelihood must be 'bce' or 'squared', got {likelihood!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    free_bits = checks.number("free_bits", free_bits, minimum=0,
                              wanted="a number >= 0 (nats per dimension)")
    if free_bits > 0 and reduction != "mean":
        raise ValueError("free_bits acts on the batch mean of the KL: use reduction='mean'")
    reconstruction = per_element.reshape(len(x), -1).sum(dim=1)  # (N,)
    kl = gaussian_kl(mu, logvar)  # (N,)
    terms = {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}
    if reduction == "mean":
        terms = {name: value.mean() for name, value in terms.items()}
    if free_bits > 0:
        kl_j = 0.5 * (logvar.exp() + mu**2 - 1 - logvar).mean(dim=0)  # (k,) per dimension
        kl_free = torch.clamp(kl_j, min=free_bits).sum()  # below lambda: constant, no gradient
        terms["loss"] = terms["reconstruction"] + beta * kl_free
    return terms
