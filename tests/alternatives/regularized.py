"""Alternative correct answers to chapter 10's exercises (`course_lib.exercises.regularized`)."""
import math

import torch


def sparsity_kl(rho, rho_hat):
    active = rho * (math.log(rho) - torch.log(rho_hat))
    inactive = (1 - rho) * (math.log(1 - rho) - torch.log1p(-rho_hat))
    return torch.sum(active + inactive)


def masking_noise(x, u, p):
    return torch.where(u < p, torch.zeros_like(x), x)


def denoising_loss(model, x, corrupt):
    noisy = corrupt(x)
    error = model(noisy) - x
    return (error * error).sum() / x.shape[0]


def contractive_sigmoid(W, b, x):
    h = torch.sigmoid(torch.nn.functional.linear(x, W, b))  # (N, K)
    J = (h * (1 - h)).unsqueeze(2) * W.unsqueeze(0)  # (N, K, D)
    return J.pow(2).sum(dim=(1, 2)).mean()
