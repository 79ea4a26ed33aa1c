"""course_lib.autoencoders against torch.distributions, torch.autograd.functional, closed forms."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian
from torch.distributions import Bernoulli, kl_divergence
from torch.testing import assert_close

import course_lib as cl
from course_lib.autoencoders import (
    Autoencoder,
    contractive_penalty,
    contractive_term,
    corrupt,
    fully_connected_autoencoder,
    fully_connected_vae,
    l1_code_term,
    pixel_mse,
    reconstruction_errors,
    reconstruction_loss,
    sparsity_kl,
    sparsity_term,
)

TOL = {"rtol": 1e-5, "atol": 1e-6}


# ---- Autoencoder and the builder -------------------------------------------------------------

def test_autoencoder_is_decoder_of_encoder():
    torch.manual_seed(0)
    enc, dec = nn.Linear(6, 2), nn.Linear(2, 6)
    model = Autoencoder(enc, dec)
    x = torch.randn(5, 6)
    assert_close(model.encode(x), enc(x))
    assert_close(model.decode(model.encode(x)), dec(enc(x)))
    assert_close(model(x), dec(enc(x)))
    assert len(list(model.parameters())) == 4


def test_autoencoder_rejects_non_modules():
    with pytest.raises(TypeError, match="encoder must be an nn.Module"):
        Autoencoder(lambda x: x, nn.Linear(2, 2))


def test_builder_mirrors_the_encoder():
    model = fully_connected_autoencoder(
        [64, 32, 8], code_activation=nn.Sigmoid, output_activation=nn.Sigmoid
    )
    enc = [type(m).__name__ for m in model.encoder]
    dec = [type(m).__name__ for m in model.decoder]
    assert enc == ["Linear", "ReLU", "Linear", "Sigmoid"]
    assert dec == ["Linear", "ReLU", "Linear", "Sigmoid"]
    assert [m.out_features for m in model.encoder if isinstance(m, nn.Linear)] == [32, 8]
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [32, 64]
    x = torch.rand(7, 64)
    assert model.encode(x).shape == (7, 8) and model(x).shape == (7, 64)


def test_linear_builder_has_no_nonlinearity_and_is_a_linear_map():
    model = fully_connected_autoencoder([10, 6, 3], activation=nn.Identity)
    leaves = [m for m in model.modules() if not isinstance(m, (nn.Sequential, Autoencoder))]
    assert all(isinstance(m, nn.Linear) for m in leaves)
    x, y = torch.randn(4, 10), torch.randn(4, 10)
    zero = model(torch.zeros(1, 10))  # affine: f(x + y) - f(0) = (f(x) - f(0)) + (f(y) - f(0))
    assert_close(model(x + y) - zero, (model(x) - zero) + (model(y) - zero), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sizes", [[5], [5, 0], [5, 2.0], [], [5, True]])
def test_builder_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match=r"sizes \(input \.\.\. code\) must be"):
        fully_connected_autoencoder(sizes)


# ---- losses ----------------------------------------------------------------------------------

def test_squared_loss_sums_over_dimensions_and_averages_over_the_batch():
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.rand(8, 64, generator=g), torch.rand(8, 64, generator=g)
    expected = nn.functional.mse_loss(x_hat, x, reduction="sum") / 8
    assert_close(reconstruction_loss(x_hat, x), expected, **TOL)
    assert_close(reconstruction_loss(x_hat, x) / 64, nn.functional.mse_loss(x_hat, x), **TOL)
    images = x.reshape(8, 8, 8)  # (N, H, W): same loss as flattened
    assert_close(reconstruction_loss(x_hat.reshape(8, 8, 8), images), expected, **TOL)


def test_bce_loss_takes_logits():
    g = torch.Generator().manual_seed(1)
    x, logits = torch.rand(5, 12, generator=g), 3 * torch.randn(5, 12, generator=g)
    expected = nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / 5
    assert_close(reconstruction_loss(logits, x, kind="bce"), expected, rtol=1e-5, atol=1e-5)


def test_loss_errors():
    x = torch.rand(3, 4)
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_loss(x, torch.rand(3, 5))
    with pytest.raises(ValueError, match="kind"):
        reconstruction_loss(x, x, kind="l1")
    with pytest.raises(TypeError, match="floating-point"):
        reconstruction_loss(x, torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty batch"):
        reconstruction_loss(torch.rand(0, 4), torch.rand(0, 4))


def test_errors_and_pixel_mse_in_eval_mode():
    torch.manual_seed(0)
    model = Autoencoder(nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)), nn.Linear(2, 4)).train()
    X = torch.rand(6, 4)
    errors = reconstruction_errors(model, X)
    model.eval()
    expected = ((model(X) - X) ** 2).sum(dim=1).detach()
    assert_close(errors, expected)
    assert model.training is False  # restored to what it was
    assert math.isclose(pixel_mse(model, X), expected.mean().item() / 4, rel_tol=1e-5)
    clean = torch.rand(6, 4)
    expected = ((model(X) - clean) ** 2).sum(dim=1).detach()
    assert_close(reconstruction_errors(model, X, target=clean), expected)
    with pytest.raises(ValueError, match="target must have the shape"):
        reconstruction_errors(model, X, target=torch.rand(6, 3))


# ---- corruption ------------------------------------------------------------------------------

def test_gaussian_corruption_statistics_and_input_untouched():
    x = torch.full((200, 50), 0.5)
    before = x.clone()
    y = corrupt(x, "gaussian", 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)
    noise = y - x
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 0.3) < 0.01


def test_masking_corruption_zeroes_the_expected_fraction():
    x = torch.rand(200, 50) + 0.1  # no zeros to begin with
    before = x.clone()
    y = corrupt(x, "masking", 0.25, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)
    zeroed = y == 0
    assert abs(zeroed.float().mean().item() - 0.25) < 0.01
    assert torch.equal(y[~zeroed], x[~zeroed])  # survivors are not rescaled
    assert torch.equal(corrupt(x, "masking", 0.0), x) and (corrupt(x, "masking", 1.0) == 0).all()


def test_corruption_is_reproducible_with_a_generator_and_fresh_without():
    x = torch.rand(4, 8)
    a = corrupt(x, "gaussian", 0.1, generator=torch.Generator().manual_seed(3))
    b = corrupt(x, "gaussian", 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(corrupt(x, "masking", 0.5), corrupt(x, "masking", 0.5))


@pytest.mark.parametrize("kind, level, error", [
    ("salt", 0.1, ValueError), ("gaussian", -0.1, ValueError), ("masking", 1.5, ValueError),
    ("masking", "0.1", TypeError), ("gaussian", True, TypeError),
])
def test_corruption_errors(kind, level, error):
    with pytest.raises(error):
        corrupt(torch.rand(2, 3), kind, level)


def test_corruption_rejects_integer_tensors():
    with pytest.raises(TypeError, match="floating-point"):
        corrupt(torch.ones(2, 3, dtype=torch.long), "gaussian", 0.1)


# ---- sparsity KL -----------------------------------------------------------------------------

def test_sparsity_kl_closed_form():
    assert_close(sparsity_kl(0.05, torch.tensor([0.2])), torch.tensor(0.093943), rtol=0, atol=1e-6)
    assert_close(sparsity_kl(0.3, torch.tensor([0.3, 0.3])), torch.tensor(0.0), rtol=0, atol=1e-7)


@pytest.mark.parametrize("rho", [0.01, 0.05, 0.3, 0.9])
def test_sparsity_kl_matches_torch_distributions(rho):
    g = torch.Generator().manual_seed(0)
    rho_hat = 0.01 + 0.98 * torch.rand(32, generator=g, dtype=torch.float64)
    target = Bernoulli(probs=torch.full_like(rho_hat, rho))
    expected = kl_divergence(target, Bernoulli(probs=rho_hat)).sum()
    assert_close(sparsity_kl(rho, rho_hat), expected, rtol=1e-10, atol=1e-12)


def test_sparsity_kl_gradient_matches_closed_form():
    rho_hat = torch.tensor([0.1, 0.4, 0.7], dtype=torch.float64, requires_grad=True)
    sparsity_kl(0.2, rho_hat).backward()
    expected = -0.2 / rho_hat + 0.8 / (1 - rho_hat)  # d/d rho_hat of the KL
    assert_close(rho_hat.grad, expected.detach())


def test_sparsity_kl_is_finite_at_zero_and_one():
    value = sparsity_kl(0.05, torch.tensor([0.0, 1.0, 0.5]))
    assert torch.isfinite(value) and value > 10


@pytest.mark.parametrize("rho", [0, 1, -0.1, 1.5, "0.1", True])
def test_sparsity_kl_rejects_rho_outside_the_open_interval(rho):
    with pytest.raises(ValueError, match="rho must be"):
        sparsity_kl(rho, torch.tensor([0.5]))


def test_sparsity_kl_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        sparsity_kl(0.1, torch.rand(4, 3))
    with pytest.raises(ValueError, match="empty"):
        sparsity_kl(0.1, torch.rand(0))


# ---- contractive penalty ---------------------------------------------------------------------

def _reference_penalty(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Batch mean of ||J||_F^2, each Jacobian from torch.autograd.functional.jacobian."""
    norms = [(jacobian(lambda v: encoder(v.unsqueeze(0)).squeeze(0), x_i) ** 2).sum() for x_i in x]
    return torch.stack(norms).mean()


def _encoders() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "linear+sigmoid": nn.Sequential(nn.Linear(7, 4), nn.Sigmoid()),
        "linear+tanh": nn.Sequential(nn.Linear(7, 4), nn.Tanh()),
        "two layers": nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3), nn.Sigmoid()),
        "linear": nn.Linear(7, 3),
        "builder": fully_connected_autoencoder(
            [7, 6, 4], activation=nn.Tanh, code_activation=nn.Sigmoid
        ).encoder,
    }


@pytest.mark.parametrize("name", list(_encoders()))
def test_contractive_penalty_matches_autograd_jacobians(name):
    encoder = _encoders()[name]
    x = torch.randn(6, 7, generator=torch.Generator().manual_seed(1))
    expected = _reference_penalty(encoder, x).detach()
    assert_close(contractive_penalty(encoder, x, path="autograd").detach(), expected, **TOL)
    assert_close(contractive_penalty(encoder, x).detach(), expected, **TOL)
    if name == "linear+sigmoid":
        assert_close(contractive_penalty(encoder, x, path="analytic").detach(), expected, **TOL)


def test_linear_encoder_penalty_is_the_squared_frobenius_norm_of_w():
    encoder = nn.Linear(5, 3)
    x = torch.randn(4, 5)
    assert_close(contractive_penalty(encoder, x), (encoder.weight**2).sum())


@pytest.mark.parametrize("path", ["analytic", "autograd"])
def test_contractive_penalty_gradients_match_the_reference(path):
    torch.manual_seed(2)
    encoder = nn.Sequential(nn.Linear(6, 4), nn.Sigmoid()).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    params = list(encoder.parameters())
    grads = torch.autograd.grad(contractive_penalty(encoder, x, path=path), params)
    expected = torch.autograd.grad(_reference_penalty_differentiable(encoder, x), params)
    for a, b in zip(grads, expected):
        assert_close(a, b, rtol=1e-9, atol=1e-12)


def _reference_penalty_differentiable(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    def one(v):
        return encoder(v.unsqueeze(0)).squeeze(0)

    norms = [(jacobian(one, x_i, create_graph=True) ** 2).sum() for x_i in x]
    return torch.stack(norms).mean()


def test_autograd_path_gradient_for_a_deeper_encoder():
    torch.manual_seed(3)
    encoder = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid()).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    params = list(encoder.parameters())
    grads = torch.autograd.grad(contractive_penalty(encoder, x), params)
    expected = torch.autograd.grad(_reference_penalty_differentiable(encoder, x), params)
    for a, b in zip(grads, expected):
        assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_contractive_penalty_errors():
    encoder = nn.Sequential(nn.Linear(4, 2), nn.Tanh())
    with pytest.raises(ValueError, match="analytic path needs"):
        contractive_penalty(encoder, torch.randn(3, 4), path="analytic")
    with pytest.raises(ValueError, match="path must be"):
        contractive_penalty(encoder, torch.randn(3, 4), path="fast")
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        contractive_penalty(encoder, torch.randn(4))
    with pytest.raises(ValueError, match="empty"):
        contractive_penalty(encoder, torch.randn(0, 4))
    with pytest.raises(TypeError, match="encoder must be"):
        contractive_penalty(lambda x: x, torch.randn(3, 4))


# ---- penalty terms for fit(penalties=...) ----------------------------------------------------

def test_penalty_terms_compute_the_weighted_penalties():
    torch.manual_seed(4)
    model = fully_connected_autoencoder([6, 3], code_activation=nn.Sigmoid)
    x = torch.rand(10, 6)
    z = model.encode(x)
    assert_close(sparsity_term(0.1, 2.0)(model, x), 2.0 * sparsity_kl(0.1, z.mean(dim=0)))
    assert_close(l1_code_term(0.5)(model, x), 0.5 * z.abs().sum(dim=1).mean())
    expected = 0.3 * contractive_penalty(model.encoder, x, path="autograd")
    assert_close(contractive_term(0.3)(model, x), expected)
    with pytest.raises(ValueError, match="weight"):
        l1_code_term(-1.0)
    with pytest.raises(ValueError, match="rho"):
        sparsity_term(1.0, 1.0)


# ---- training through the course's one training function, and the exercises -------------------

def test_autoencoder_trains_through_fit_with_corruption_and_logged_penalties():
    from functools import partial

    from course_lib.training import fit

    torch.manual_seed(0)
    X = torch.rand(64, 6)
    model = fully_connected_autoencoder([6, 4], code_activation=nn.Sigmoid)
    history = fit(
        model, X, None, loss_fn=reconstruction_loss, num_epochs=3, batch_size=16,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        transform=partial(corrupt, kind="masking", level=0.3),
        penalties={"sparsity": sparsity_term(0.1, 1.0), "contractive": contractive_term(0.1)},
    )
    assert {"loss", "sparsity", "contractive"} <= set(history.keys())
    assert all(math.isfinite(v) for v in history["loss"])


def test_exercises_self_test():
    from course_lib.grading import exercises_of, self_test

    ids = [e.id for chapter in ("autoencoders", "regularized") for e in exercises_of(chapter)]
    assert len(ids) >= 8
    assert self_test(ids) == []


# ---- dtype from the model; half precision (issue 24) --------------------------------------


def test_a_vae_moved_to_float64_samples_in_float64():
    vae = fully_connected_vae([6, 4, 2]).double()
    samples = vae.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.dtype == torch.float64 and samples.shape == (3, 6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_sparsity_penalty_is_finite_in_half_precision(dtype):
    rho_hat = torch.tensor([0.0, 1.0, 0.05, 0.5], dtype=dtype)  # a dead and a saturated unit
    penalty = sparsity_kl(0.05, rho_hat)
    assert torch.isfinite(penalty)
    expected = sparsity_kl(0.05, rho_hat.float())
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-2)


def test_the_sparsity_term_trains_a_half_precision_code_without_inf():
    class Coder(nn.Module):
        def encode(self, x):
            return torch.sigmoid(x)  # codes at 0 and 1 after rounding to half precision

    x = torch.tensor([[-30.0, 30.0, 0.0]], dtype=torch.float16)
    assert torch.isfinite(sparsity_term(0.05, 1.0)(Coder(), x))


def test_corruption_of_image_batches_penalty_weights_of_zero_and_named_bad_inputs():
    from course_lib.autoencoders import corrupt, l1_code_term, reconstruction_loss

    images = torch.rand(4, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    noisy = corrupt(images, "gaussian", 0.5, generator=g)
    assert noisy.shape == images.shape and (noisy - images).std().item() == pytest.approx(0.5,
                                                                                        rel=0.15)
    masked = corrupt(images, "masking", 0.5, generator=g)
    assert masked.shape == images.shape and 0.3 < (masked == 0).float().mean().item() < 0.7
    assert l1_code_term(0.0) is not None  # a weight of 0 switches a penalty off; it is allowed
    with pytest.raises(TypeError, match="^x must be a torch.Tensor"):
        corrupt("not a tensor", "gaussian", 0.1)
    with pytest.raises(TypeError, match="^x_hat must be a torch.Tensor"):
        reconstruction_loss("not a tensor", images)


def test_autoencoder_checks_name_the_argument_and_the_shape_expected():
    from course_lib.autoencoders import gaussian_kl, sparsity_kl

    with pytest.raises(ValueError, match=r"^rho_hat must have shape 1 dimensions"):
        sparsity_kl(0.05, torch.rand(2, 3))
    with pytest.raises(TypeError, match="^mu must be"):
        gaussian_kl("mu", torch.zeros(2, 2))
    for build in (cl.fully_connected_autoencoder, cl.fully_connected_vae):
        assert isinstance(build([4, 1]), nn.Module)  # a code of one number is allowed
        for bad in ([4, 0], [4, -2]):
            with pytest.raises(ValueError):
                build(bad)


def test_a_contractive_term_uses_the_path_it_was_given():
    from course_lib.autoencoders import contractive_term

    model = cl.fully_connected_autoencoder([6, 3])  # a ReLU-free linear code: no analytic path
    penalty = contractive_term(1.0, path="analytic")
    with pytest.raises(ValueError, match="analytic path needs"):
        penalty(model, torch.rand(4, 6))
    with pytest.raises(ValueError, match="path"):
        contractive_term(1.0, path="exact")  # refused when written, not at the first batch
