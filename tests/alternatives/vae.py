"""Alternative correct answers to chapter 11's exercises (`course_lib.exercises.vae`), written
differently from the references: the grader's parity test checks that `cl.check` and the grader
both pass them."""
import torch


def reparameterize(mu, logvar, eps):
    sigma = torch.sqrt(torch.exp(logvar))
    return torch.addcmul(mu, sigma, eps)


def gaussian_kl(mu, logvar):
    var = logvar.exp()
    return 0.5 * (var.sum(1) + (mu * mu).sum(1) - mu.shape[1] - logvar.sum(1))


def negative_elbo(logits, x, mu, logvar, beta=1.0):
    # BCE with logits written out: softplus(l) - x * l
    reconstruction = (torch.nn.functional.softplus(logits) - x * logits).sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return torch.mean(reconstruction + beta * kl)


def interpolate(z_a, z_b, steps):
    return torch.stack([z_a + (z_b - z_a) * (s / (steps - 1)) for s in range(steps)])
