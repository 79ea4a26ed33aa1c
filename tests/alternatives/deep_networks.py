"""Alternative correct answers to chapter 1's exercises (`course_lib.exercises.deep_networks`)."""

import torch


def dense_layer(x, W, b):
    return torch.nn.functional.linear(x, W, b)


def mlp_parameter_count(sizes):
    total = 0
    for i in range(1, len(sizes)):
        total += (sizes[i - 1] + 1) * sizes[i]
    return total


def circular_conv1d(x, w):
    n, K = x.shape[0], w.shape[0]
    idx = (torch.arange(n)[:, None] + torch.arange(K)[None, :] - K // 2) % n
    return (x[idx] * w).sum(dim=1)


def early_stopping(val_losses, patience):
    best_epoch = 0
    for epoch in range(len(val_losses)):
        if val_losses[epoch] < val_losses[best_epoch]:
            best_epoch = epoch
        if epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def weight_counts(height, width, kernel_size, in_channels=1, out_channels=1):
    out_h, out_w = height - kernel_size + 1, width - kernel_size + 1
    outputs = out_h * out_w * out_channels  # output units
    return (outputs * height * width * in_channels,
            outputs * kernel_size**2 * in_channels,
            out_channels * in_channels * kernel_size**2)
