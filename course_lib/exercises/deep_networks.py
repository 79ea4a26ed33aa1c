"""Exercises of chapter 1, Deep networks and parameter sharing.

The notebook: `exercises/01_deep_networks.ipynb`.
"""
from __future__ import annotations

import torch

from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


# ---- deep_networks.dense_layer: a layer of neurons -------------------------------------------

def dense_layer(
    x: torch.Tensor, W: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """A fully connected layer before its activation: x (N, n_in), W (n_out,
    n_in), b (n_out,) -> (N, n_out).
    """
    return x @ W.T + b


def _dense_no_bias(x, W, b):
    return x @ W.T


def _dense_no_transpose(x, W, b):
    return x @ W.reshape(W.shape[1], W.shape[0]) + b


def _dense_relu(x, W, b):
    return torch.relu(x @ W.T + b)


def _dense_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for n, n_in, n_out in [(4, 3, 2), (1, 5, 5), (6, 2, 7), (3, 8, 1)]:
        x, W, b = (
            torch.randn(n, n_in, generator=g),
            torch.randn(n_out, n_in, generator=g),
            torch.randn(n_out, generator=g),
        )
        cases.append(Case((x, W, b), label=f"x ({n}, {n_in}), W ({n_out}, {n_in}), b ({n_out},)"))
    return cases


register(
    Exercise(
        id="deep_networks.dense_layer",
        reference=dense_layer,
        cases=_dense_cases,
        run=call_with_grad,
        atol=1e-5,
        mutants=[
            Mutant(_dense_no_bias, "Each neuron adds its own bias: x @ W.T + b."),
            Mutant(
                _dense_no_transpose,
                "Row o of W holds the weights of neuron o, one per input: multiply x (N, n_in) by "
                "W.T (n_in, n_out); "
                "reshape is not a transpose.",
            ),
            Mutant(
                _dense_relu,
                "Return the pre-activation w . x + b; the activation is a separate step.",
            ),
        ],
    )
)


# ---- deep_networks.mlp_parameter_count -------------------------------------------------------

def mlp_parameter_count(sizes: list[int]) -> int:
    """Weights and biases of a fully connected network with layer widths `sizes`
    (input first).
    """
    return sum(
        n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )


def _count_no_biases(sizes):
    return sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def _count_input_bias(sizes):
    return sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])) + sum(sizes)


def _count_neurons(sizes):
    return sum(sizes)


register(
    Exercise(
        id="deep_networks.mlp_parameter_count",
        reference=mlp_parameter_count,
        cases=lambda: [
            Case((s,))
            for s in (
                [40, 10],
                [40, 100, 100, 10],
                [2, 3],
                [10000, 1],
                [1, 1, 1, 1],
                [64, 32, 16, 8, 4],
            )
        ],
        mutants=[
            Mutant(
                _count_no_biases,
                "Every neuron of every layer after the input also has a bias: add n_out per layer.",
            ),
            Mutant(
                _count_input_bias,
                "The input layer has no neurons and no biases: count biases from the first hidden "
                "layer on.",
            ),
            Mutant(
                _count_neurons,
                "Those are the neurons; parameters sit on the connections (n_in * n_out weights) "
                "plus one bias per neuron.",
            ),
        ],
    )
)


# ---- deep_networks.circular_conv1d: parameter sharing as a 1-D convolution ----------------------

def circular_conv1d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """y[i] = sum_k w[k] x[(i + k - K // 2) mod n] for x (n,), w (K,), K odd:
    circular cross-correlation.
    """
    K = w.shape[0]
    return sum(w[k] * torch.roll(x, shifts=K // 2 - k) for k in range(K))


def _conv_zero_padding(x, w):
    K = w.shape[0]
    return torch.nn.functional.conv1d(x.view(1, 1, -1), w.view(1, 1, -1), padding=K // 2).flatten()


def _conv_flipped(x, w):
    return circular_conv1d(x, w.flip(0))


def _conv_uncentred(x, w):
    return sum(w[k] * torch.roll(x, shifts=-k) for k in range(w.shape[0]))


def _circular_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)
    cases = [
        Case((torch.randn(n, generator=g), torch.randn(k, generator=g)))
        for n, k in [(10, 3), (7, 5), (40, 3), (6, 1)]
    ]
    cases.append(
        Case(
            (torch.arange(8.0), torch.tensor([1.0, 0.0, 0.0])),
            label="x = arange(8.0), w = [1, 0, 0]",
        )
    )
    return cases


register(
    Exercise(
        id="deep_networks.circular_conv1d",
        reference=circular_conv1d,
        cases=_circular_cases,
        run=call_with_grad,
        atol=1e-5,
        mutants=[
            Mutant(
                _conv_zero_padding,
                "Wrap around at the ends (index mod n, or torch.roll) instead of padding with "
                "zeros.",
            ),
            Mutant(
                _conv_flipped,
                "Deep-learning 'convolution' is a cross-correlation: w[0] multiplies x[i - K//2], "
                "without flipping w.",
            ),
            Mutant(
                _conv_uncentred,
                "Centre the kernel: the offset is k - K // 2, so w[K // 2] multiplies x[i].",
            ),
        ],
    )
)


# ---- deep_networks.early_stopping --------------------------------------------------------------

def early_stopping(val_losses: list[float], patience: int) -> tuple[int, int]:
    """(stop_epoch, best_epoch), 0-based: stop after `patience` epochs without a
    new lowest loss.
    """
    best, best_epoch = float("inf"), 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch = loss, epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def _stop_off_by_one(val_losses, patience):
    best, best_epoch = float("inf"), 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch = loss, epoch
        elif epoch - best_epoch > patience:
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def _stop_global_best(val_losses, patience):
    stop, _ = early_stopping(val_losses, patience)
    return stop, min(range(len(val_losses)), key=lambda e: val_losses[e])


def _stop_any_increase(val_losses, patience):
    best_epoch = 0
    for epoch in range(1, len(val_losses)):
        if val_losses[epoch] < val_losses[epoch - 1]:
            best_epoch = epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


register(
    Exercise(
        id="deep_networks.early_stopping",
        reference=early_stopping,
        cases=lambda: [
            Case(([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 0.6], 2)),
            Case(([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 0.6], 5)),
            Case(([0.5, 0.4, 0.3, 0.2], 1)),
            Case(([0.5, 0.6, 0.55, 0.58, 0.4, 0.3], 3)),
            Case(([1.0, 0.9, 0.95, 0.92, 0.93, 0.94, 0.96], 3)),
            Case(([0.3, 0.3, 0.3], 1)),
        ],
        mutants=[
            Mutant(
                _stop_off_by_one,
                "Stop as soon as `patience` epochs have passed without improvement (>= patience), "
                "not one later.",
            ),
            Mutant(
                _stop_global_best,
                "The best epoch is the best one seen up to the stop; epochs after stopping are "
                "never trained.",
            ),
            Mutant(
                _stop_any_increase,
                "Compare with the lowest loss so far, not with the previous epoch: a small dip "
                "after a rise is no new best.",
            ),
        ],
    )
)


# ---- deep_networks.weight_counts: dense, locally connected and convolutional (issue 15) --------

def weight_counts(
    height: int,
    width: int,
    kernel_size: int,
    in_channels: int = 1,
    out_channels: int = 1,
) -> tuple[int, int, int]:
    """(dense, locally connected, convolutional) weights, no biases, of a layer
    that maps an image (in_channels, height, width) to the out_channels maps
    of a K x K filter without padding, stride 1.
    """
    # output positions per map
    positions = (height - kernel_size + 1) * (width - kernel_size + 1)
    # inputs one output reads through a filter
    window = kernel_size * kernel_size * in_channels
    # every output reads every input
    dense = positions * out_channels * height * width * in_channels
    # locality: each output reads its window, own weights
    local = positions * out_channels * window
    # locality and sharing: one filter per output map
    conv = out_channels * window
    return dense, local, conv


def _counts_input_positions(height, width, kernel_size, in_channels=1, out_channels=1):
    positions = height * width
    window = kernel_size * kernel_size * in_channels
    return (
        positions * out_channels * height * width * in_channels,
        positions * out_channels * window,
        out_channels * window,
    )


def _counts_no_channels(height, width, kernel_size, in_channels=1, out_channels=1):
    positions = (height - kernel_size + 1) * (width - kernel_size + 1)
    return positions * height * width, positions * kernel_size**2, kernel_size**2


def _counts_local_is_shared(height, width, kernel_size, in_channels=1, out_channels=1):
    dense, _, conv = weight_counts(height, width, kernel_size, in_channels, out_channels)
    return dense, conv, conv


def _counts_conv_per_position(height, width, kernel_size, in_channels=1, out_channels=1):
    dense, local, _ = weight_counts(height, width, kernel_size, in_channels, out_channels)
    return dense, local, local


register(
    Exercise(
        id="deep_networks.weight_counts",
        reference=weight_counts,
        cases=lambda: [
            Case(args)
            for args in [
                (100, 100, 5),
                (100, 100, 5, 3),
                (8, 8, 3, 1, 16),
                (28, 28, 5, 1, 6),
                (32, 32, 3, 3, 8),
                (5, 5, 5),
                (4, 6, 1),
            ]
        ],
        mutants=[
            Mutant(
                _counts_input_positions,
                "Without padding a K x K filter fits at (H - K + 1) x (W - K + 1) positions: count "
                "output positions, not input pixels.",
            ),
            Mutant(
                _counts_no_channels,
                "A filter spans all input channels (K * K * C_in weights) and each output channel "
                "has its own: multiply by in_channels and out_channels.",
            ),
            Mutant(
                _counts_local_is_shared,
                "A locally connected layer is local but not shared: every output position has its "
                "own K * K * C_in weights, so multiply by the number of positions.",
            ),
            Mutant(
                _counts_conv_per_position,
                "A convolution shares one filter across all positions: its count does not depend "
                "on "
                "the image size.",
            ),
        ],
    )
)
