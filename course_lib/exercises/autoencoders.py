"""Exercises of chapter 9, Autoencoders (`exercises/09_autoencoders.ipynb`)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course_lib.exercises import PYTHON_NUMBER_HINT
from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


# ---- autoencoders.reconstruction_loss: the course's loss convention ----------------------------

def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over each example's dimensions, averaged over the
    batch (N, D).
    """
    # (N,) squared distance per example
    per_example = ((x_hat - x) ** 2).sum(dim=1)
    return per_example.mean()


def _loss_mean_everything(x_hat, x):
    return ((x_hat - x) ** 2).mean()


def _loss_sum_everything(x_hat, x):
    return ((x_hat - x) ** 2).sum()


def _loss_wrong_dimension(x_hat, x):
    return ((x_hat - x) ** 2).sum(dim=0).mean()


def _loss_not_squared(x_hat, x):
    return (x_hat - x).abs().sum(dim=1).mean()


def _loss_norm(x_hat, x):
    return (x_hat - x).norm(dim=1).mean()


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(90)
    cases = []
    for n, d in [(5, 64), (32, 8), (3, 10), (1, 4)]:
        x = torch.rand(n, d, generator=g)
        x_hat = x + 0.3 * torch.randn(n, d, generator=g)
        cases.append(Case((x_hat, x), label=f"x_hat and x of shape ({n}, {d})"))
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    cases.append(Case((torch.tensor([[0.0, 0.0], [0.0, 0.0]]), x),
                      label="x_hat = [[0, 0], [0, 0]], x = [[0, 1], [1, 1]] (answer 1.5)"))
    return cases


def _loss_python_number(x_hat, x):
    return ((x_hat - x) ** 2).sum(dim=1).mean().item()


register(Exercise(
    id="autoencoders.reconstruction_loss",
    reference=reconstruction_loss,
    cases=_loss_cases,
    run=call_with_grad,
    mutants=[
        Mutant(_loss_python_number, PYTHON_NUMBER_HINT),
        Mutant(_loss_mean_everything,
               "That is the per-pixel mean (F.mse_loss): the course's convention sums over each "
               "example's dimensions first, then averages over the batch, .sum(dim=1).mean()."),
        Mutant(_loss_sum_everything,
               "Average over the batch: summing over the examples too makes the loss grow with "
               "the batch size."),
        Mutant(_loss_wrong_dimension,
               "Mean over the wrong dimension: sum over the pixels (dim=1) and average over the "
               "examples (dim=0), not the other way round."),
        Mutant(_loss_not_squared, "Square the differences: d is the squared Euclidean distance."),
        Mutant(_loss_norm,
               "The Euclidean norm is not squared: use the sum of squared differences, "
               "not its square root."),
    ],
))


# ---- autoencoders.pca_reconstruct -----------------------------------------------------------

def pca_reconstruct(
    X_train: torch.Tensor, X: torch.Tensor, k: int
) -> torch.Tensor:
    """Reconstruct X (N, D) from its projection on the top-k principal
    directions of X_train.
    """
    mean = X_train.mean(dim=0)  # (D,) centre with the *training* mean
    # rows: directions
    _, _, Vh = torch.linalg.svd(X_train - mean, full_matrices=False)
    V = Vh[:k].T  # (D, k) top-k principal directions, orthonormal columns
    return mean + (X - mean) @ V @ V.T


def _pca_not_centred(X_train, X, k):
    _, _, Vh = torch.linalg.svd(X_train, full_matrices=False)
    V = Vh[:k].T
    return X @ V @ V.T


def _pca_own_mean(X_train, X, k):
    mean = X_train.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X_train - mean, full_matrices=False)
    V = Vh[:k].T
    m = X.mean(dim=0)
    return m + (X - m) @ V @ V.T


def _pca_smallest(X_train, X, k):
    mean = X_train.mean(dim=0)
    Xc = X_train - mean
    _, vectors = torch.linalg.eigh(Xc.T @ Xc)  # ascending eigenvalues
    V = vectors[:, :k]
    return mean + (X - mean) @ V @ V.T


def _pca_no_mean_back(X_train, X, k):
    mean = X_train.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X_train - mean, full_matrices=False)
    V = Vh[:k].T
    return (X - mean) @ V @ V.T


def _pca_columns(X_train, X, k):
    mean = X_train.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X_train - mean, full_matrices=False)
    V = Vh[:, :k]
    return mean + (X - mean) @ V @ V.T


def _pca_cases() -> list[Case]:
    g = torch.Generator().manual_seed(91)
    cases = []
    for n, d, k in [(40, 6, 2), (30, 5, 1), (50, 8, 3), (25, 4, 4)]:
        scales = torch.linspace(3.0, 0.3, d, dtype=torch.float64)  # distinct variances
        mixing = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]
        offset = 2 * torch.rand(d, generator=g, dtype=torch.float64)
        X_all = torch.randn(n + 6, d, generator=g, dtype=torch.float64) * scales @ mixing.T + offset
        cases.append(Case((X_all[:n], X_all[n:], k),
                          label=f"X_train of shape ({n}, {d}) (not centred), X of shape (6, {d}), "
                                f"k={k}"))
    return cases


register(Exercise(
    id="autoencoders.pca_reconstruct",
    reference=pca_reconstruct,
    cases=_pca_cases,
    atol=1e-8,
    rtol=1e-6,
    mutants=[
        Mutant(_pca_not_centred,
               "Centre the data: PCA's directions are those of the centred training data, "
               "X_train - mean, and reconstruction adds the mean back."),
        Mutant(_pca_own_mean,
               "Use the training mean for X as well: the code is computed with the parameters "
               "fitted on X_train, not with statistics of the data being encoded."),
        Mutant(_pca_smallest,
               "torch.linalg.eigh returns eigenvalues in ascending order: the top-k principal "
               "directions are the LAST k eigenvectors (or the first k rows of Vh from svd)."),
        Mutant(_pca_no_mean_back,
               "Add the mean back after projecting: x_hat = mean + (x - mean) V V^T."),
        Mutant(_pca_columns,
               "The principal directions are the ROWS of Vh in torch.linalg.svd (X = U S Vh): "
               "take Vh[:k].T, not Vh[:, :k]."),
    ],
))


# ---- autoencoders.principal_angles -----------------------------------------------------------

def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the column spaces of A and
    B, both (D, k).
    """
    Q_A, _ = torch.linalg.qr(A)  # orthonormal basis of span(A)
    Q_B, _ = torch.linalg.qr(B)
    # descending, in [0, 1] up to rounding
    cosines = torch.linalg.svdvals(Q_A.T @ Q_B)
    return torch.arccos(cosines.clamp(-1.0, 1.0)).sort().values


def _angles_no_orthonormalization(A, B):
    cosines = torch.linalg.svdvals(A.T @ B)
    return torch.arccos(cosines.clamp(-1.0, 1.0)).sort().values


def _angles_cosines(A, B):
    Q_A, _ = torch.linalg.qr(A)
    Q_B, _ = torch.linalg.qr(B)
    return torch.linalg.svdvals(Q_A.T @ Q_B).sort().values


def _angles_degrees(A, B):
    return torch.rad2deg(principal_angles(A, B))


def _angles_columnwise(A, B):
    Q_A, _ = torch.linalg.qr(A)
    Q_B, _ = torch.linalg.qr(B)
    cosines = (Q_A * Q_B).sum(dim=0).abs()
    return torch.arccos(cosines.clamp(-1.0, 1.0)).sort().values


def _angles_cases() -> list[Case]:
    g = torch.Generator().manual_seed(92)
    cases = []
    for d, k in [(6, 2), (10, 3), (5, 1)]:
        A = torch.randn(d, k, generator=g, dtype=torch.float64)
        B = torch.randn(d, k, generator=g, dtype=torch.float64)
        cases.append(Case((A, B), label=f"A and B random of shape ({d}, {k})"))
    A = torch.randn(8, 3, generator=g, dtype=torch.float64)
    mix = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0], [1.0, 0.0, 1.0]], dtype=torch.float64)
    cases.append(Case((A, A @ mix),
                      label="B = A @ M with M invertible (3 x 3): the same subspace, angles 0"))
    e = torch.eye(4, dtype=torch.float64)
    B = torch.stack([e[0], (e[1] + e[2]) / 2**0.5], dim=1)
    cases.append(Case((e[:, :2], B),
                      label="A = [e1, e2], B = [e1, (e2 + e3)/sqrt(2)]: angles 0 and pi/4"))
    return cases


register(Exercise(
    id="autoencoders.principal_angles",
    reference=principal_angles,
    cases=_angles_cases,
    atol=1e-6,
    rtol=1e-6,
    mutants=[
        Mutant(_angles_no_orthonormalization,
               "Orthonormalize first (torch.linalg.qr): the singular values of A^T B are cosines "
               "only when the columns of A and of B are orthonormal."),
        Mutant(_angles_cosines,
               "The singular values of Q_A^T Q_B are the COSINES of the principal angles: "
               "return their arccos (clamped to [-1, 1] first, against rounding)."),
        Mutant(_angles_degrees, "Return radians (torch.arccos gives radians), not degrees."),
        Mutant(_angles_columnwise,
               "Principal angles are not the angles between matching columns: they come from the "
               "singular values of Q_A^T Q_B, which do not depend on the basis chosen."),
    ],
))


# ---- autoencoders.reconstruction_errors: per-example errors in eval mode -----------------------

def reconstruction_errors(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Per-example squared error (N,) of model(X) against X, in eval mode, mode
    restored.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x_hat = model(X)
    model.train(was_training)
    return ((x_hat - X) ** 2).sum(dim=1)


def _errors_train_mode(model, X):
    with torch.no_grad():
        return ((model(X) - X) ** 2).sum(dim=1)


def _errors_not_restored(model, X):
    model.eval()
    with torch.no_grad():
        return ((model(X) - X) ** 2).sum(dim=1)


def _errors_mean(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x_hat = model(X)
    model.train(was_training)
    return ((x_hat - X) ** 2).mean(dim=1)


def _errors_batch_mean(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x_hat = model(X)
    model.train(was_training)
    return ((x_hat - X) ** 2).sum(dim=1).mean()


def _errors_cases() -> list[Case]:
    cases = []
    for seed, (d, k, n) in enumerate([(8, 3, 6), (5, 2, 4), (12, 4, 1)]):
        cases.append(Case((seed, d, k, n),
                          label=f"a ({d} -> {k} -> {d}) autoencoder with dropout, in training "
                                f"mode; X of shape ({n}, {d})"))
    return cases


def _run_errors(solution: Any, case: Case) -> dict[str, Any]:
    """The errors (twice, to expose randomness) and whether the model is left in training mode."""
    seed, d, k, n = case.args
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, k), nn.Tanh(), nn.Dropout(0.5), nn.Linear(k, d)).train()
    X = torch.rand(n, d, generator=torch.Generator().manual_seed(seed + 100))
    torch.manual_seed(1000 + seed)
    first = solution(model, X)
    torch.manual_seed(2000 + seed)
    second = solution(model, X)
    result = {"errors": first, "errors again": second, "model.training after": model.training}
    return {key: v.detach() if isinstance(v, torch.Tensor) else v for key, v in result.items()}


register(Exercise(
    id="autoencoders.reconstruction_errors",
    reference=reconstruction_errors,
    cases=_errors_cases,
    run=_run_errors,
    mutants=[
        Mutant(_errors_train_mode,
               "Switch the model to eval mode (model.eval()) before computing the errors: in "
               "training mode dropout makes them random."),
        Mutant(_errors_not_restored,
               "Restore the model's mode afterwards: remember model.training and call "
               "model.train(was_training) at the end."),
        Mutant(_errors_mean,
               "Sum over each example's dimensions (dim=1) as the loss convention does, not mean."),
        Mutant(_errors_batch_mean,
               "Return one error per example, shape (N,): do not average over the batch."),
    ],
))
