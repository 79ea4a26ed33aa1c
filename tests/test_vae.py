"""Tests of the variational autoencoder in course_lib.autoencoders (chapter 11): the Gaussian KL
against torch.distributions and closed forms, the VAE's shapes, loss terms and gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn
from torch.testing import assert_close

from course_lib.autoencoders import (
    VariationalAutoencoder,
    elbo_loss,
    fully_connected_vae,
    gaussian_kl,
)


@pytest.mark.parametrize("shape", [(1, 1), (5, 2), (16, 8), (3, 4, 6)])
def test_gaussian_kl_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(0)
    mu = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64)
    q = D.Normal(mu, torch.exp(0.5 * logvar))
    p = D.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = D.kl_divergence(q, p).sum(dim=-1)
    assert_close(gaussian_kl(mu, logvar), expected, rtol=1e-12, atol=1e-12)
    # the same through the multivariate normal with a diagonal covariance
    if len(shape) == 2:
        mvn = D.MultivariateNormal(mu, torch.diag_embed(logvar.exp()))
        prior = D.MultivariateNormal(torch.zeros_like(mu), torch.eye(shape[1], dtype=mu.dtype))
        assert_close(gaussian_kl(mu, logvar), D.kl_divergence(mvn, prior), rtol=1e-10, atol=1e-10)


def test_gaussian_kl_closed_form_values():
    # q = prior: KL 0; mu = 1 in one dimension: KL = 1/2; sigma^2 = e: KL = (e - 2) / 2
    assert_close(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))
    assert_close(gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)), torch.tensor([0.5]))
    assert_close(gaussian_kl(torch.zeros(1, 1), torch.ones(1, 1)),
                 torch.tensor([(math.e - 2) / 2]))
    # summed over latent dimensions: D copies of the same 1-D KL
    one = gaussian_kl(torch.tensor([[0.3]]), torch.tensor([[-0.7]]))
    assert_close(gaussian_kl(torch.full((1, 5), 0.3), torch.full((1, 5), -0.7)), 5 * one)


def test_gaussian_kl_is_non_negative_and_its_gradient_matches_the_closed_form():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(50, 4, generator=g, requires_grad=True)
    logvar = torch.randn(50, 4, generator=g, requires_grad=True)
    kl = gaussian_kl(mu, logvar)
    assert (kl >= 0).all()
    kl.sum().backward()
    assert_close(mu.grad, mu.detach())  # d/dmu = mu
    assert_close(logvar.grad, 0.5 * (logvar.detach().exp() - 1))  # d/dlogvar = (e^lv - 1) / 2


@pytest.mark.parametrize("mu, logvar", [
    (torch.zeros(4, 3), torch.zeros(4, 2)), (torch.zeros(4, 3), torch.zeros(3)),
])
def test_gaussian_kl_rejects_mismatched_shapes(mu, logvar):
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(mu, logvar)


def test_gaussian_kl_rejects_integers_and_non_tensors():
    with pytest.raises(TypeError, match="floating-point"):
        gaussian_kl(torch.zeros(2, 2, dtype=torch.int64), torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gaussian_kl([0.0], torch.zeros(1))


def test_vae_shapes_encode_decode_sample():
    torch.manual_seed(0)
    vae = fully_connected_vae([64, 32, 8])
    x = torch.rand(10, 64)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (10, 8)
    x_hat, mu2, logvar2 = vae(x)
    assert x_hat.shape == (10, 64)
    assert_close(mu, mu2) and assert_close(logvar, logvar2)
    assert vae.decode(mu).shape == (10, 64)
    samples = vae.sample(7, generator=torch.Generator().manual_seed(3))
    assert samples.shape == (7, 64) and ((samples > 0) & (samples < 1)).all()  # Bernoulli means
    again = vae.sample(7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(samples, again)
    assert not samples.requires_grad and vae.training  # mode restored
    assert [type(m) for m in vae.encoder] == [nn.Linear, nn.ReLU, nn.Linear]
    assert vae.encoder[-1].out_features == 16 and vae.decoder[-1].out_features == 64


def test_vae_sample_decodes_prior_draws():
    torch.manual_seed(0)
    vae = fully_connected_vae([6, 2], likelihood="squared")
    g = torch.Generator().manual_seed(5)
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(5))
    assert_close(vae.sample(4, generator=g), vae.decode(z).detach())


def test_reparameterize_has_the_right_distribution_and_gradients():
    mu = torch.tensor([1.0, -2.0]).repeat(20000, 1).requires_grad_(True)
    logvar = torch.log(torch.tensor([0.25, 4.0])).repeat(20000, 1).requires_grad_(True)
    z = VariationalAutoencoder.reparameterize(
        mu, logvar, generator=torch.Generator().manual_seed(0)
    )
    assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    assert_close(z.std(0), torch.tensor([0.5, 2.0]), atol=0.05, rtol=0)
    z.sum().backward()
    assert_close(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    eps = (z - mu) / torch.exp(0.5 * logvar)
    assert_close(logvar.grad, (0.5 * torch.exp(0.5 * logvar) * eps).detach())  # dz/dlogvar


def test_elbo_terms_match_hand_computation_and_beta():
    torch.manual_seed(0)
    x = torch.rand(6, 5).round()
    out = (torch.randn(6, 5), torch.randn(6, 3), torch.randn(6, 3))
    terms = elbo_loss(out, x)
    rec = F.binary_cross_entropy_with_logits(out[0], x, reduction="sum") / 6
    kl = D.kl_divergence(D.Normal(out[1], torch.exp(0.5 * out[2])), D.Normal(0.0, 1.0)).sum() / 6
    assert_close(terms["reconstruction"], rec)
    assert_close(terms["kl"], kl)
    assert_close(terms["loss"], rec + kl)
    assert_close(elbo_loss(out, x, beta=4.0)["loss"], rec + 4 * kl)
    per_example = elbo_loss(out, x, reduction="none")
    assert per_example["loss"].shape == (6,)
    assert_close(per_example["loss"].mean(), terms["loss"])
    squared = elbo_loss(out, x, likelihood="squared")
    assert_close(squared["reconstruction"], ((out[0] - x) ** 2).sum() / 6)


def test_free_bits_clamp_each_dimension_s_batch_mean_kl():
    torch.manual_seed(0)
    x = torch.rand(6, 5).round()
    mu = torch.tensor([[0.1, 2.0, 0.0]]).repeat(6, 1).requires_grad_()
    logvar = torch.zeros(6, 3, requires_grad=True)
    out = (torch.randn(6, 5), mu, logvar)
    terms = elbo_loss(out, x, beta=2.0, free_bits=0.5)
    per_dim = D.kl_divergence(D.Normal(mu, 1.0), D.Normal(0.0, 1.0)).mean(0)  # 0.005, 2, 0
    assert_close(terms["kl"], per_dim.sum())  # the logged KL is the true one
    assert_close(terms["loss"], terms["reconstruction"] + 2.0 * (0.5 + 2.0 + 0.5))
    terms["loss"].backward()
    assert_close(mu.grad[:, [0, 2]], torch.zeros(6, 2))  # below lambda: no pull to the prior
    assert_close(mu.grad[:, 1], torch.full((6,), 2.0 * 2.0 / 6))  # beta * mu_j / N
    assert_close(elbo_loss(out, x, free_bits=0.0)["loss"], elbo_loss(out, x)["loss"])
    with pytest.raises(ValueError, match="free_bits must be"):
        elbo_loss(out, x, free_bits=-1.0)
    with pytest.raises(ValueError, match="reduction='mean'"):
        elbo_loss(out, x, free_bits=0.5, reduction="none")


def test_elbo_gradients_reach_encoder_and_decoder_and_the_loss_falls():
    torch.manual_seed(0)
    vae = fully_connected_vae([16, 12, 2])
    prototypes = (torch.rand(2, 16) > 0.5).float()
    x = prototypes[torch.arange(32) % 2]  # two patterns: a 1-D code separates them
    terms = elbo_loss(vae(x), x)
    terms["loss"].backward()
    for name, p in vae.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        optimizer.zero_grad()
        loss = elbo_loss(vae(x), x)["loss"]
        first = loss.item() if first is None else first
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2


def test_elbo_is_a_lower_bound_on_the_log_likelihood_of_a_tiny_model():
    # one binary pixel, latent z ~ N(0, 1), p(x=1|z) = sigmoid(w z + b): log p(x) by quadrature
    torch.manual_seed(0)
    decoder = nn.Linear(1, 1)
    encoder = nn.Linear(1, 2)
    vae = VariationalAutoencoder(encoder, decoder, latent_dim=1)
    x = torch.tensor([[1.0]])
    z = torch.linspace(-8, 8, 4001).unsqueeze(1)
    with torch.no_grad():
        p_x_given_z = torch.sigmoid(decoder(z)).squeeze(1)
        prior = torch.exp(-z.squeeze(1) ** 2 / 2) / math.sqrt(2 * math.pi)
        log_px = torch.log(torch.trapezoid(p_x_given_z * prior, z.squeeze(1)))
        torch.manual_seed(1)
        mu, logvar = vae.encode(x)
        estimates = [-elbo_loss(vae(x), x)["loss"] for _ in range(4000)]
    elbo = torch.stack(estimates).mean()
    assert elbo <= log_px + 0.01


def test_vae_and_elbo_reject_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim"):
        VariationalAutoencoder(nn.Linear(4, 4), nn.Linear(2, 4), latent_dim=0)
    with pytest.raises(ValueError, match="likelihood"):
        fully_connected_vae([4, 2], likelihood="poisson")
    with pytest.raises(ValueError, match="sizes"):
        fully_connected_vae([4])
    vae = VariationalAutoencoder(nn.Linear(4, 3), nn.Linear(2, 4), latent_dim=2)
    with pytest.raises(ValueError, match="2 \\* latent_dim"):
        vae.encode(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="n must"):
        fully_connected_vae([4, 2]).sample(0)
    x = torch.zeros(2, 4)
    with pytest.raises(TypeError, match="x_hat, mu, logvar"):
        elbo_loss(torch.zeros(2, 4), x)
    out = (torch.zeros(2, 4), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="beta"):
        elbo_loss(out, x, beta=-1)
    with pytest.raises(ValueError, match="same shape"):
        elbo_loss(out, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="reduction"):
        elbo_loss(out, x, reduction="sum")
