"""Exercises of chapter 4, Batch normalization (`exercises/04_batch_normalization.ipynb`)."""
from __future__ import annotations

import torch
from torch import nn

from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


def _batches(seed: int) -> list[Case]:
    """(x, gamma, beta) cases: random batches of several shapes plus the chapter's [1, 2, 3, 6]."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, c in [(8, 3), (5, 1), (16, 6), (2, 4)]:
        x = 2 * torch.randn(n, c, generator=g) + torch.randn(c, generator=g)
        gamma, beta = 1 + 0.5 * torch.randn(c, generator=g), torch.randn(c, generator=g)
        cases.append(
            Case(
                (x, gamma, beta),
                label=f"x of shape ({n}, {c}), random gamma and beta of shape ({c},)",
            )
        )
    cases.append(
        Case(
            (torch.tensor([[1.0], [2.0], [3.0], [6.0]]), torch.ones(1), torch.zeros(1)),
            label="x = [[1.], [2.], [3.], [6.]], gamma = [1.], beta = [0.]",
        )
    )
    small = 0.01 * torch.randn(6, 2, generator=g)  # variance comparable to eps
    cases.append(
        Case(
            (small, torch.ones(2), torch.zeros(2)),
            {"eps": 1e-3},
            label="x of shape (6, 2) with tiny values (std 0.01), gamma = 1, beta = 0, eps = 1e-3",
        )
    )
    return cases


# ---- batchnorm.batch_norm_train: the transform in training mode ------------------------------

def batch_norm_train(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Normalize each column of x (N, C) with the batch mean and biased
    variance, then scale and shift.
    """
    mu = x.mean(dim=0)  # (C,)
    var = x.var(dim=0, unbiased=False)  # (C,) biased: divide by N
    x_hat = (x - mu) / torch.sqrt(var + eps)
    return gamma * x_hat + beta


def _train_unbiased(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + eps) + beta


def _train_eps_outside(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / (x.std(0, unbiased=False) + eps) + beta


def _train_no_eps(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False)) + beta


def _train_over_features_no_keepdim(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(1)) / torch.sqrt(x.var(1, unbiased=False) + eps) + beta


def _train_over_features(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _train_detached_statistics(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(0).detach(), x.var(0, unbiased=False).detach()
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _train_no_affine(x, gamma, beta, eps=1e-5):
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)


def _train_variance_for_std(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / (x.var(0, unbiased=False) + eps) + beta


register(
    Exercise(
        id="batchnorm.batch_norm_train",
        reference=batch_norm_train,
        cases=lambda: _batches(41),
        run=call_with_grad,
        atol=1e-5,
        rtol=1e-4,
        mutants=[
            Mutant(
                _train_variance_for_std,
                "Variance vs standard deviation: divide by the standard deviation "
                "sqrt(var + eps), not by the variance.",
            ),
            Mutant(
                _train_unbiased,
                "Biased vs unbiased variance: the forward pass normalizes with the biased batch "
                "variance "
                "(divide by N: x.var(dim=0, unbiased=False)); the unbiased one is for the running "
                "estimate.",
            ),
            Mutant(
                _train_eps_outside, "eps goes inside the square root: (x - mu) / sqrt(var + eps)."
            ),
            Mutant(
                _train_no_eps,
                "eps is missing: divide by sqrt(var + eps). It barely changes ordinary batches, "
                "but a "
                "feature whose variance is close to eps (the tiny-values case) is scaled far too "
                "much, "
                "and the gradient even more; with zero variance you would divide by 0.",
            ),
            Mutant(
                _train_over_features_no_keepdim,
                "Batch normalization averages over the batch, dim=0 (one mean per column). "
                "x.mean(dim=1) "
                "gives one value per example, shape (N,), which does not line up with x (N, C): it "
                "is "
                "the wrong dimension, and a per-example statistic would need keepdim=True.",
            ),
            Mutant(
                _train_over_features,
                "Batch normalization averages over the batch, dim=0 (one mean per feature/column); "
                "averaging over the features of each example is layer normalization.",
            ),
            Mutant(
                _train_detached_statistics,
                "The values are right but the gradients are not: the batch mean and variance "
                "depend on x, and "
                "the gradient must flow through them. Don't .detach() them or compute them under "
                "no_grad.",
            ),
            Mutant(
                _train_no_affine,
                "Apply the learnable scale and shift after normalizing: gamma * x_hat + beta.",
            ),
        ],
    )
)


# ---- batchnorm.update_running_stats ----------------------------------------------------------

def update_running_stats(
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    x: torch.Tensor,
    momentum: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """New (running_mean, running_var) after the batch x (N, C), PyTorch's
    convention, not in place.
    """
    n = x.shape[0]
    mu = x.mean(dim=0)
    var_unbiased = x.var(dim=0, unbiased=False) * n / (n - 1)  # = x.var(dim=0)
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * var_unbiased
    return new_mean, new_var


def _update_biased(running_mean, running_var, x, momentum=0.1):
    mu, var = x.mean(0), x.var(0, unbiased=False)
    return (1 - momentum) * running_mean + momentum * mu, (
        1 - momentum
    ) * running_var + momentum * var


def _update_momentum_reversed(running_mean, running_var, x, momentum=0.1):
    mu, var = x.mean(0), x.var(0)
    return momentum * running_mean + (1 - momentum) * mu, momentum * running_var + (
        1 - momentum
    ) * var


def _update_std(running_mean, running_var, x, momentum=0.1):
    mu, std = x.mean(0), x.std(0)
    return (1 - momentum) * running_mean + momentum * mu, (
        1 - momentum
    ) * running_var + momentum * std


def _update_replace(running_mean, running_var, x, momentum=0.1):
    return x.mean(0), x.var(0)


def _update_cases() -> list[Case]:
    g = torch.Generator().manual_seed(42)
    cases = [
        Case(
            (torch.zeros(1), torch.ones(1), torch.tensor([[1.0], [2.0], [3.0], [6.0]])),
            label="running_mean = [0.], running_var = [1.], x = [[1.], [2.], [3.], [6.]] (momentum "
                  "0.1)",
        )
    ]
    for n, c, momentum in [(8, 3, 0.1), (4, 5, 0.5), (32, 2, 0.01), (3, 4, 0.3)]:
        x = 3 * torch.randn(n, c, generator=g) + 1
        cases.append(
            Case(
                (torch.randn(c, generator=g), 0.5 + torch.rand(c, generator=g), x),
                {"momentum": momentum},
                label=f"random running statistics of shape ({c},), x of shape ({n}, {c}), "
                      f"momentum={momentum}",
            )
        )
    return cases


register(
    Exercise(
        id="batchnorm.update_running_stats",
        reference=update_running_stats,
        cases=_update_cases,
        atol=1e-5,
        rtol=1e-5,
        mutants=[
            Mutant(
                _update_biased,
                "Biased vs unbiased variance: the running variance estimates the population "
                "variance, so PyTorch "
                "feeds it the unbiased batch variance (divide by N - 1), although the forward pass "
                "uses the biased one.",
            ),
            Mutant(
                _update_momentum_reversed,
                "Momentum convention reversed: in PyTorch momentum is the weight of the NEW batch, "
                "running = (1 - momentum) * running + momentum * batch (the opposite of an "
                "optimizer's momentum).",
            ),
            Mutant(_update_std, "Track the variance (x.var), not the standard deviation."),
            Mutant(
                _update_replace,
                "Don't replace the running statistics by the batch's: blend them, "
                "(1 - momentum) * running + momentum * batch.",
            ),
        ],
    )
)


# ---- batchnorm.batch_norm_eval: the inference transform --------------------------------------

def batch_norm_eval(
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalization in eval mode: normalize x (N, C) with the running
    (population) statistics.
    """
    return gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta


def _eval_batch_statistics(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps) + beta


def _eval_no_sqrt(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return gamma * (x - running_mean) / (running_var + eps) + beta


def _eval_no_affine(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return (x - running_mean) / torch.sqrt(running_var + eps)


def _eval_cases() -> list[Case]:
    g = torch.Generator().manual_seed(43)
    cases = []
    for n, c in [(8, 3), (5, 2), (3, 6)]:
        x = 2 * torch.randn(n, c, generator=g) + 0.5
        stats = (torch.randn(c, generator=g), 0.25 + 3 * torch.rand(c, generator=g))
        affine = (1 + 0.5 * torch.randn(c, generator=g), torch.randn(c, generator=g))
        cases.append(
            Case(
                (x, *stats, *affine),
                label=f"x of shape ({n}, {c}), running statistics and gamma, beta of shape ({c},)",
            )
        )
    x1 = torch.randn(1, 4, generator=g)
    cases.append(
        Case(
            (
                x1,
                torch.randn(4, generator=g),
                0.5 + torch.rand(4, generator=g),
                torch.ones(4),
                torch.zeros(4),
            ),
            label="a batch of ONE example, x of shape (1, 4), gamma = 1, beta = 0",
        )
    )
    return cases


register(
    Exercise(
        id="batchnorm.batch_norm_eval",
        reference=batch_norm_eval,
        cases=_eval_cases,
        atol=1e-5,
        rtol=1e-5,
        mutants=[
            Mutant(
                _eval_batch_statistics,
                "Forgetting eval mode: at inference use the running (population) statistics, not "
                "the batch's mean and "
                "variance; otherwise the output depends on the other examples in the batch (and "
                "fails for a batch of one).",
            ),
            Mutant(
                _eval_no_sqrt,
                "Divide by the standard deviation sqrt(running_var + eps), not by the variance.",
            ),
            Mutant(
                _eval_no_affine,
                "After normalizing, apply the learned scale and shift: gamma * x_hat + beta.",
            ),
        ],
    )
)


# ---- batchnorm.fold: the inference transform folded into the preceding linear layer ---------

def fold(
    W: torch.Tensor,
    b: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', b') with x @ W'.T + b' == BN_eval(x @ W.T + b); W is (out, in), the
    rest (out,).
    """
    # (out,) one scale per output feature
    s = gamma / torch.sqrt(running_var + eps)
    return s[:, None] * W, s * (b - running_mean) + beta


def _fold_columns(W, b, running_mean, running_var, gamma, beta, eps=1e-5):
    s = gamma / torch.sqrt(running_var + eps)
    return W * s[None, :W.shape[1]], s * (b - running_mean) + beta


def _fold_bias_unscaled(W, b, running_mean, running_var, gamma, beta, eps=1e-5):
    s = gamma / torch.sqrt(running_var + eps)
    return s[:, None] * W, b - s * running_mean + beta


def _fold_no_mean(W, b, running_mean, running_var, gamma, beta, eps=1e-5):
    s = gamma / torch.sqrt(running_var + eps)
    return s[:, None] * W, s * b + beta


def _fold_variance(W, b, running_mean, running_var, gamma, beta, eps=1e-5):
    s = gamma / (running_var + eps)
    return s[:, None] * W, s * (b - running_mean) + beta


def _fold_cases() -> list[Case]:
    g = torch.Generator().manual_seed(44)
    cases = []
    for n_in, n_out in [(3, 3), (5, 4), (6, 4), (2, 7)]:
        args = (
            torch.randn(n_out, n_in, generator=g),
            torch.randn(n_out, generator=g),
            torch.randn(n_out, generator=g),
            0.25 + 3 * torch.rand(n_out, generator=g),
            1 + 0.5 * torch.randn(n_out, generator=g),
            torch.randn(n_out, generator=g),
        )
        cases.append(
            Case(
                args,
                label=f"W of shape ({n_out}, {n_in}); b, running_mean, running_var, gamma, beta of "
                      f"shape ({n_out},)",
            )
        )
    return cases


register(
    Exercise(
        id="batchnorm.fold",
        reference=fold,
        cases=_fold_cases,
        atol=1e-5,
        rtol=1e-5,
        mutants=[
            Mutant(
                _fold_columns,
                "Scale the ROWS of W: output feature j is multiplied by s_j, and row j of W (out, "
                "in) makes output j, "
                "so W' = s[:, None] * W.",
            ),
            Mutant(
                _fold_bias_unscaled,
                "The old bias b also passes through the normalization: b' = s * (b - mean) + beta.",
            ),
            Mutant(
                _fold_no_mean,
                "Subtract the running mean before scaling: b' = s * (b - running_mean) + beta.",
            ),
            Mutant(
                _fold_variance,
                "The scale is gamma / sqrt(running_var + eps): divide by the standard deviation.",
            ),
        ],
    )
)


# ---- batchnorm.BatchNorm1d: the whole layer (a class) ----------------------------------------

class BatchNorm1d(nn.Module):
    """Batch normalization for (N, C) input with learnable weight/bias and
    running statistics.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mu, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean.mul_(1 - self.momentum).add_(
                    self.momentum * mu
                )
                self.running_var.mul_(1 - self.momentum).add_(
                    self.momentum * var * n / (n - 1)
                )
        else:
            mu, var = self.running_mean, self.running_var
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


class _ModuleBiasedRunning(BatchNorm1d):
    def forward(self, x):
        if self.training:
            mu, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mu)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            mu, var = self.running_mean, self.running_var
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


class _ModuleMomentumReversed(BatchNorm1d):
    def forward(self, x):
        if self.training:
            mu, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mu)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * x.var(0))
        else:
            mu, var = self.running_mean, self.running_var
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


class _ModuleIgnoresEval(BatchNorm1d):
    def forward(self, x):
        mu, var = x.mean(0), x.var(0, unbiased=False)
        with torch.no_grad():
            n = x.shape[0]
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mu)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1))
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


class _ModuleUnbiasedForward(BatchNorm1d):
    def forward(self, x):
        if self.training:
            mu, var = x.mean(0), x.var(0)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mu)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            mu, var = self.running_mean, self.running_var
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


def _module_cases() -> list[Case]:
    g = torch.Generator().manual_seed(45)
    cases = []
    for c, n, momentum, steps in [(3, 8, 0.1, 3), (5, 4, 0.5, 2), (2, 16, 0.2, 4)]:
        batches = [2 * torch.randn(n, c, generator=g) + 1 for _ in range(steps)]
        x_eval = torch.randn(6, c, generator=g)
        w = torch.linspace(-1, 1, n * c).reshape(n, c)  # fixed weights of the loss sum(w * y)
        cases.append(
            Case(
                (c, momentum, batches, x_eval, w),
                label=f"BatchNorm1d({c}, momentum={momentum}): {steps} training batches of shape "
                      f"({n}, {c}), "
                f"then eval mode on a batch of shape (6, {c})",
            )
        )
    return cases


def _run_module(cls, case: Case):
    """Train-mode outputs, gradients and running statistics after each batch, then eval-mode
    outputs.
    """
    c, momentum, batches, x_eval, w = case.args
    layer = cls(c, momentum=momentum)
    with torch.no_grad():  # a non-trivial scale and shift
        layer.weight.copy_(torch.linspace(0.5, 1.5, c))
        layer.bias.copy_(torch.linspace(-1.0, 1.0, c))
    layer.train()
    record = []
    for x in batches:
        x = x.clone().requires_grad_(True)
        y = layer(x)
        layer.zero_grad()
        (w * y).sum().backward()
        record.append(
            {
                "output": y.detach(),
                "grad_input": x.grad,
                "grad_weight": layer.weight.grad.clone(),
                "running_mean": layer.running_mean.clone(),
                "running_var": layer.running_var.clone(),
            }
        )
    layer.eval()
    with torch.no_grad():
        record.append({"eval_output": layer(x_eval)})
    return record


register(
    Exercise(
        id="batchnorm.BatchNorm1d",
        reference=BatchNorm1d,
        cases=_module_cases,
        run=_run_module,
        kind="class",
        atol=1e-5,
        rtol=1e-4,
        mutants=[
            Mutant(
                _ModuleBiasedRunning,
                "Biased vs unbiased variance: normalize with the biased batch variance, but update "
                "running_var with "
                "the unbiased one (times N / (N - 1)).",
            ),
            Mutant(
                _ModuleMomentumReversed,
                "Momentum convention reversed: running = (1 - momentum) * running + momentum * "
                "batch in PyTorch.",
            ),
            Mutant(
                _ModuleIgnoresEval,
                "Forgetting eval mode: when self.training is False, normalize with running_mean "
                "and running_var "
                "and leave them unchanged.",
            ),
            Mutant(
                _ModuleUnbiasedForward,
                "Biased vs unbiased variance: the forward pass normalizes with the biased batch "
                "variance (divide by N).",
            ),
        ],
    )
)
