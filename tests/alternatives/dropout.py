"""Alternative correct answers to chapter 6's exercises (`course_lib.exercises.dropout`)."""

import torch


def dropout_train(x, mask, p):
    scale = 1.0 / (1.0 - p)
    return torch.where(mask, x * scale, torch.zeros_like(x))


def dropout(x, mask, p, training):
    if training:
        return x * mask.to(x.dtype) / (1 - p)
    return x


def dropout_classic(x, mask, p, training):
    return torch.where(mask, x, 0.0) if training else (1 - p) * x


def mc_average(logits_fn, x, masks):
    total = 0
    for mask in masks:
        total = total + torch.nn.functional.softmax(logits_fn(x, mask), dim=-1)
    return total / len(masks)
