"""Layers: batch normalization written from scratch, and folding it into the preceding linear layer.

Introduced in chapter 4 (batch normalization). `BatchNorm1d` is a readable re-implementation of
`torch.nn.BatchNorm1d` (same parameters, buffers, outputs, running statistics and gradients, so the
two load each other's `state_dict`); it is for reading and testing, not speed. `batchnorm_layers`
finds a model's batch-norm layers (PyTorch's, this module's and subclasses of either);
`fold_batchnorm` turns `bn(linear(x))` in eval mode into one `nn.Linear`, as deployment tools do,
and `fold_network` does it for every such pair of a Sequential. `accuracy_in_train_mode` measures
the mistake of evaluating in training mode (batch statistics of the test batches). `LayerNorm`,
`GroupNorm` and `BatchNorm2d` normalize over other axes (chapter 4); `Dropout` (chapter 6) is
inverted dropout with the behaviour of `torch.nn.Dropout`.

This module is not a replacement for the PyTorch layer: it has no `affine=False`, no
`track_running_stats=False` and no channels-last or fused kernels.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from course_lib import checks

__all__ = [
    "BatchNorm1d",
    "accuracy_in_train_mode",
    "batchnorm_layers",
    "fold_batchnorm",
    "fold_network",
]


class BatchNorm1d(nn.Module):
    """Batch normalization over the batch dimension of (N, C) or (N, C, L) input. Chapter 4.

    Training mode: normalize each feature with the mini-batch mean and *biased* variance, then
    scale by `weight` (gamma) and shift by `bias` (beta); update the running estimates with the
    *unbiased* variance: `running = (1 - momentum) * running + momentum * batch_statistic`.
    `momentum=None` uses the cumulative average instead (factor 1 / num_batches_tracked).
    Eval mode: normalize with the running estimates, a fixed affine map of each feature.
    """

    running_mean: torch.Tensor  # buffers (register_buffer), typed as torch's own BatchNorm does
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        num_features = checks.positive_int("num_features", num_features)
        eps = checks.positive_float("eps", eps)
        if momentum is not None:
            momentum = checks.number(
                "momentum",
                momentum,
                minimum=0.0,
                maximum=1.0,
                wanted="a number in [0, 1] or None (cumulative average)",
            )
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
                    "batch normalization in training mode needs more than one value per feature, "
                    f"got input of shape {tuple(x.shape)}: use a batch of at least 2, or call "
                    "model.eval() to use the running statistics"
                )
            mu = x.mean(dim=dims)  # (C,)
            var = x.var(dim=dims, unbiased=False)  # (C,) biased: divides by n, used to normalize
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = (
                    1.0 / self.num_batches_tracked.item()
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * n / (n - 1)  # the running estimate of the population variance
                self.running_mean.mul_(1 - factor).add_(factor * mu)
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        else:
            mu, var = self.running_mean, self.running_var
        x_hat = (x - mu.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        return self.weight.reshape(shape) * x_hat + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


_FOLDABLE = (nn.BatchNorm1d, BatchNorm1d)  # what fold_batchnorm and fold_network accept


def fold_batchnorm(linear: nn.Linear, bn: nn.Module) -> nn.Linear:
    """One `nn.Linear` equal to `bn(linear(x))` with `bn` in eval mode. Chapter 4.

    In eval mode batch normalization is y = s * z + (beta - s * E[z]) with
    s = gamma / sqrt(Var[z] + eps),
    so W' = diag(s) W and b' = s * (b - E[z]) + beta. `bn` is a `torch.nn.BatchNorm1d` or this
    module's `BatchNorm1d`; the inputs are left unchanged.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    if not isinstance(bn, _FOLDABLE):
        raise TypeError(
            "bn must be a torch.nn.BatchNorm1d or course_lib.layers.BatchNorm1d, "
            f"got {type(bn).__name__}"
        )
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): in eval mode it still "
            "normalizes with batch statistics, which no fixed linear layer can reproduce"
        )
    if bn.num_features != linear.out_features:
        raise ValueError(
            f"bn normalizes {bn.num_features} features but linear outputs {linear.out_features}"
        )
    with torch.no_grad():
        gamma = bn.weight if bn.weight is not None else torch.ones_like(mean)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(mean)
        b = linear.bias if linear.bias is not None else torch.zeros_like(mean)
        s = gamma / torch.sqrt(var + bn.eps)  # (out,) per-feature scale
        folded = nn.utils.skip_init(  # no random initialization: leaves the global RNG untouched
            nn.Linear,
            linear.in_features,
            linear.out_features,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        folded.weight.copy_(s[:, None] * linear.weight)  # diag(s) W: scales row j by s_j
        folded.bias.copy_(s * (b - mean) + beta)
    return folded


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every batch-norm layer of `model`, in order: PyTorch's (1-D, 2-D, 3-D), this module's
    `BatchNorm1d` and `BatchNorm2d`, and subclasses of any of them (a noisy variant). Chapter 4.

    Use it to set a momentum, reset the running statistics or read them, e.g.
    ``for bn in batchnorm_layers(model): bn.reset_running_stats()``.
    """
    checks.module("model", model)
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, BatchNorm1d)
    return [m for m in model.modules() if isinstance(m, kinds)]


@torch.no_grad()
def accuracy_in_train_mode(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int
) -> float:
    """Accuracy of `model` evaluated in training mode on consecutive batches of `X`: what
    forgetting `model.eval()` gives, with each batch normalized by its own statistics. Chapter 4.

    Works on a copy, so the model's running statistics and mode are left as they were.
    """
    checks.module("model", model)
    batch_size = checks.positive_int("batch_size", batch_size)
    checks.data("accuracy_in_train_mode", X, y)
    trained = copy.deepcopy(model).train()
    logits = torch.cat([trained(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    return (logits.argmax(dim=1) == y).float().mean().item()


def fold_network(model: nn.Sequential) -> nn.Sequential:
    """A copy of a Sequential in eval mode with every Linear -> batch-norm pair folded into one
    `nn.Linear` by `fold_batchnorm`; the other layers are copied unchanged. Chapter 4.

    The copy computes the same function as `model` in eval mode (up to float rounding) with
    fewer layers and parameters; `model` itself is left as it was.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"model must be an nn.Sequential (e.g. a course_lib MLP), got {type(model).__name__}"
        )
    modules, layers, i = list(model), list[nn.Module](), 0
    while i < len(modules):
        first, second = modules[i], modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(first, nn.Linear) and isinstance(second, _FOLDABLE):
            layers.append(fold_batchnorm(first, second))
            i += 2
        else:
            layers.append(copy.deepcopy(modules[i]))
            i += 1
    return nn.Sequential(*layers).eval()


# ---- Normalization beyond the batch: layer, group and per-channel batch normalization ----------
# Chapter 4. Self-contained block: each layer is checked against its PyTorch twin in
# tests/test_normalization_layers.py.

__all__ += ["BatchNorm2d", "GroupNorm", "LayerNorm"]


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension of (..., C) input, like `nn.LayerNorm(C)`.

    Each example is standardized with its *own* mean and biased variance over its C features, then
    scaled and shifted per feature. No batch statistics: the same in training and eval mode, and a
    batch of one is fine. Chapter 4.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        num_features = checks.positive_int("num_features", num_features)
        self.num_features, self.eps = num_features, checks.positive_float("eps", eps)
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma, per feature
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta, per feature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"expected input of shape (..., {self.num_features}), "
                f"got {tuple(getattr(x, 'shape', ()))}"
            )
        mu = x.mean(dim=-1, keepdim=True)  # (..., 1) per example
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1) biased, as nn.LayerNorm
        x_hat = (x - mu) / torch.sqrt(var + self.eps)  # zero mean, unit variance per example
        return self.weight * x_hat + self.bias  # gamma * x_hat + beta

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class GroupNorm(nn.Module):
    """Group normalization of (N, C, ...) input, like `nn.GroupNorm(num_groups, C)`.
    Chapter 4.

    The C channels are split into `num_groups` groups of consecutive channels; each example is
    standardized per group over the group's channels and all positions. One group is layer
    normalization over (C, ...); C groups is instance normalization. Scale and shift per channel.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        checks.positive_int("num_groups", num_groups)
        checks.positive_int("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps = checks.positive_float("eps", eps)
        self.weight = nn.Parameter(torch.ones(num_channels))  # gamma, per channel
        self.bias = nn.Parameter(torch.zeros(num_channels))  # beta, per channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"expected input of shape (N, {self.num_channels}, ...), "
                f"got {tuple(getattr(x, 'shape', ()))}"
            )
        n = x.shape[0]
        groups = x.reshape(n, self.num_groups, -1)  # (N, G, C/G * positions)
        mu = groups.mean(dim=-1, keepdim=True)  # (N, G, 1) per example and group
        var = groups.var(dim=-1, keepdim=True, unbiased=False)  # (N, G, 1) biased
        x_hat = ((groups - mu) / torch.sqrt(var + self.eps)).reshape(x.shape)
        shape = (1, -1) + (1,) * (x.dim() - 2)  # broadcast a (C,) vector over x
        return self.weight.reshape(shape) * x_hat + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of (N, C, H, W) feature maps, like `nn.BatchNorm2d(C)`. Chapter 4.

    One mean and variance per *channel*, over the batch and every position (N * H * W values):
    the (N, C, H * W) view is exactly what `BatchNorm1d` normalizes per feature over (N, L).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"expected input of shape (N, {self.num_features}, H, W), "
                f"got {tuple(getattr(x, 'shape', ()))}"
            )
        return super().forward(x.flatten(2)).reshape(x.shape)  # statistics over N and H * W


# ---- Dropout (chapter 6) -----------------------------------------------------------------------
# Self-contained block, tested against torch.nn.Dropout in tests/test_dropout.py.

__all__ += ["Dropout"]


class Dropout(nn.Module):
    """Inverted dropout written from scratch, the behaviour of `torch.nn.Dropout`. Chapter 6.

    Training mode: each element is kept with probability 1 - p and scaled by 1 / (1 - p), or set
    to zero, so that the expected output equals the input; the gradient flows through the same
    mask. Eval mode, and p = 0: the identity. p = 1: all zeros. The mask is drawn from torch's
    global generator with `bernoulli_(1 - p)`, so `torch.manual_seed` fixes it.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = checks.probability("dropout probability p", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.tensor("x", x)
        if not self.training or self.p == 0:
            return x  # test time: the whole network, no scaling (it was done during training)
        if self.p == 1:
            return x * torch.zeros_like(x)  # every unit dropped; keeps the graph (gradient 0)
        keep = torch.empty_like(x).bernoulli_(1 - self.p)  # 1 with probability 1 - p, else 0
        return x * keep / (1 - self.p)  # E[keep / (1 - p)] = 1: the expectation is preserved

    def extra_repr(self) -> str:
        return f"p={self.p}"
