"""Alternative correct answers to chapter 5's exercises (`course_lib.exercises.optimization`)."""

import math

import torch


def momentum_step(w, v, g, lr, beta):
    v = v.mul(beta).add(g)
    return torch.addcmul(w, v, torch.full_like(v, -lr)), v


def momentum_step_lr_inside(w, v, g, lr, beta):
    step = torch.add(v * beta, g, alpha=lr)  # beta v + lr g
    return w.sub(step), step


def cosine_with_warmup(step, total_steps, warmup_steps, base_lr):
    if step + 1 <= warmup_steps:
        return (step + 1) * base_lr / warmup_steps
    t = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr * math.cos(math.pi * t / 2) ** 2  # (1 + cos x) / 2 = cos^2(x / 2)


def l1_penalty(w, lam):
    return lam * torch.linalg.vector_norm(w.flatten(), ord=1)


def soft_threshold(w, threshold):
    return w - torch.clamp(w, min=-threshold, max=threshold)
