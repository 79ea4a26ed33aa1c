"""Alternative correct answers to chapter 9's exercises (`course_lib.exercises.autoencoders`)."""
import torch


def reconstruction_loss(x_hat, x):
    n = x.shape[0]
    return torch.sum(torch.square(x - x_hat)) / n


def pca_reconstruct(X_train, X, k):
    mean = X_train.mean(dim=0, keepdim=True)
    Xc = X_train - mean
    eigenvalues, vectors = torch.linalg.eigh(Xc.T @ Xc)  # ascending
    V = vectors[:, -k:]  # the k largest
    P = V @ V.T  # projector on the principal subspace
    return (X - mean) @ P + mean


def principal_angles(A, B):
    Q_A = torch.linalg.qr(A).Q
    Q_B = torch.linalg.qr(B).Q
    s = torch.linalg.svd(Q_A.T @ Q_B).S
    s = torch.minimum(s, torch.ones_like(s))
    angles = torch.arccos(s)
    return torch.sort(angles).values


def reconstruction_errors(model, X):
    mode = model.training
    try:
        model.train(False)
        with torch.no_grad():
            diff = model(X) - X
    finally:
        model.train(mode)
    return (diff * diff).sum(dim=-1)
