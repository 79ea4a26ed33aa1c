"""Layers: batch normalization written from scratch, and folding it into the preceding linear layer.

Introduced in chapter 4 (batch normalization). `BatchNorm1d` is a readable re-implementation of
`torch.nn.BatchNorm1d` (same parameters, buffers, outputs, running statistics and gradients, so the
two load each other's `state_dict`); it is for reading and testing, not speed. `batchnorm_layers`
finds a model's batch-norm layers (PyTorch's, this module's and subclasses of either);
`fold_batchnorm` turns `bn(linear(x))` in eval mode into one `nn.Linear`, as deployment tools do,
and `fold_network` does it for every such pair of a Sequential.

This module is not a replacement for the PyTorch layer: it has no `affine=False`, no
`track_running_stats=False` and no channels-last or fused kernels.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from course_lib import checks

__all__ = ["BatchNorm1d", "batchnorm_layers", "fold_batchnorm", "fold_network"]


class BatchNorm1d(nn.Module):
    """Batch normalization over the batch dimension of (N, C) or (N, C, L) input (chapter 4).

    Training mode: normalize each feature with the mini-batch mean and *biased* variance, then
    scale by `weight` (gamma) and shift by `bias` (beta); update the running estimates with the
    *unbiased* variance: `running = (1 - momentum) * running + momentum * batch_statistic`.
    `momentum=None` uses the cumulative average instead (factor 1 / num_batches_tracked).
    Eval mode: normalize with the running estimates, a fixed affine map of each feature.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        num_features = checks.positive_int("num_features", num_features)
        eps = checks.positive_float("eps", eps)
        if momentum is not None:
            momentum = checks.number("momentum", momentum, minimum=0.0, maximum=1.0,
                                     wanted="a number in [0, 1] or None (cumulative average)")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma, learnable scale
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta, learnable shift
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        """Forget the running estimates: mean 0, variance 1, no batches seen."""
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.tensor("x", x)
        if x.dim() not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"expected input of shape (N, {self.num_features}) or (N, {self.num_features}, L), "
                f"got {tuple(x.shape)}"
            )
        dims = (0,) if x.dim() == 2 else (0, 2)  # statistics per feature, over batch (and length)
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1)  # broadcast a (C,) vector over x
        if self.training:
            n = x.numel() // self.num_features  # values per feature in this batch
            if n < 2:
                raise ValueError(
                    f"batch normalization in training mode needs more than one value per feature, got input of "
                    f"shape {tuple(x.shape)}: use a batch of at least 2, or call model.eval() to use the "
                    "running statistics"
                )
            mu = x.mean(dim=dims)  # (C,)
            var = x.var(dim=dims, unbiased=False)  # (C,) biased: divides by n, used to normalize
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                unbiased = var * n / (n - 1)  # the running estimate of the population variance
                self.running_mean.mul_(1 - factor).add_(factor * mu)
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        else:
            mu, var = self.running_mean, self.running_var
        x_hat = (x - mu.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        return self.weight.reshape(shape) * x_hat + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


_BATCHNORM_TYPES = (nn.BatchNorm1d, BatchNorm1d)  # what batchnorm_layers and the folding recognise


def fold_batchnorm(linear: nn.Linear, bn: nn.Module) -> nn.Linear:
    """One `nn.Linear` equal to `bn(linear(x))` with `bn` in eval mode (chapter 4).

    In eval mode batch normalization is y = s * z + (beta - s * E[z]) with s = gamma / sqrt(Var[z] + eps),
    so W' = diag(s) W and b' = s * (b - E[z]) + beta. `bn` is a `torch.nn.BatchNorm1d` or this
    module's `BatchNorm1d`; the inputs are left unchanged.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    if not isinstance(bn, _BATCHNORM_TYPES):
        raise TypeError(f"bn must be a torch.nn.BatchNorm1d or course_lib.layers.BatchNorm1d, got {type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn has no running statistics (track_running_stats=False): in eval mode it still "
                         "normalizes with batch statistics, which no fixed linear layer can reproduce")
    if bn.num_features != linear.out_features:
        raise ValueError(f"bn normalizes {bn.num_features} features but linear outputs {linear.out_features}")
    with torch.no_grad():
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
        b = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
        s = gamma / torch.sqrt(bn.running_var + bn.eps)  # (out,) per-feature scale
        folded = nn.utils.skip_init(  # no random initialization: leaves the global RNG untouched
            nn.Linear, linear.in_features, linear.out_features, device=linear.weight.device, dtype=linear.weight.dtype
        )
        folded.weight.copy_(s[:, None] * linear.weight)  # diag(s) W: scales row j by s_j
        folded.bias.copy_(s * (b - bn.running_mean) + beta)
    return folded


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every 1-D batch-norm layer of `model`, in order: `torch.nn.BatchNorm1d`, this module's
    `BatchNorm1d`, and subclasses of either (a noisy variant, say). Chapter 4.

    Use it to set a momentum, reset the running statistics or read them, e.g.
    ``for bn in batchnorm_layers(model): bn.reset_running_stats()``.
    """
    checks.module("model", model)
    return [m for m in model.modules() if isinstance(m, _BATCHNORM_TYPES)]


def fold_network(model: nn.Sequential) -> nn.Sequential:
    """A copy of a Sequential in eval mode with every Linear -> batch-norm pair folded into one
    `nn.Linear` by `fold_batchnorm`; the other layers are copied unchanged. Chapter 4.

    The copy computes the same function as `model` in eval mode (up to float rounding) with
    fewer layers and parameters; `model` itself is left as it was.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential (e.g. a course_lib MLP), got {type(model).__name__}")
    modules, layers, i = list(model), [], 0
    while i < len(modules):
        pair = modules[i : i + 2]
        if len(pair) == 2 and isinstance(pair[0], nn.Linear) and isinstance(pair[1], _BATCHNORM_TYPES):
            layers.append(fold_batchnorm(*pair))
            i += 2
        else:
            layers.append(copy.deepcopy(modules[i]))
            i += 1
    return nn.Sequential(*layers).eval()
