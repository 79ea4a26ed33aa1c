"""Alternative correct answers to chapter 4's exercises (`course_lib.exercises.batchnorm`)."""

import torch
from torch import nn


def batch_norm_train(x, gamma, beta, eps=1e-5):
    n = x.shape[0]
    mu = x.sum(dim=0) / n
    var = ((x - mu) ** 2).sum(dim=0) / n
    return (x - mu) * torch.rsqrt(var + eps) * gamma + beta


def update_running_stats(running_mean, running_var, x, momentum=0.1):
    var, mean = torch.var_mean(x, dim=0, correction=1)
    return torch.lerp(running_mean, mean, momentum), torch.lerp(running_var, var, momentum)


def batch_norm_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return torch.nn.functional.batch_norm(
        x, running_mean, running_var, gamma, beta, training=False, eps=eps
    )


def fold(W, b, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma * torch.rsqrt(running_var + eps)
    return torch.diag(scale) @ W, (b - running_mean) * scale + beta


class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return torch.nn.functional.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
