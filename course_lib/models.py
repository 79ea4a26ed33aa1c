"""Models: the fully connected network (MLP) used across the course.

Introduced in chapter 1 (deep networks); chapter 2 varies its activation, chapter 3 its depth and
initialization, chapter 4 adds batch normalization. Convolutional models live in `course_lib.cnn`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from torch import nn

from course_lib import checks

__all__ = ["MLP", "count_parameters", "init_weights"]

Model = TypeVar("Model", bound=nn.Module)  # init_weights returns the model it was given


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (elements of parameters with requires_grad). Chapter 1."""
    checks.module("module", module)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class MLP(nn.Sequential):
    """Fully connected network: Linear -> [norm] -> activation -> [dropout], repeated; then a
    final Linear. Chapter 1.

    `sizes` lists the widths from input to output, e.g. `[40, 256, 256, 10]`. `activation` is a
    module class (or a factory) called once per hidden layer; `nn.Identity` gives a purely linear
    network. `batch_norm` inserts `nn.BatchNorm1d` after each hidden Linear; `dropout` > 0 adds
    `nn.Dropout` after each activation. Inputs with more than two dimensions are flattened.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Callable[[], nn.Module] = nn.ReLU,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        sizes = checks.positive_ints("sizes (input ... output)", sizes, min_length=2)
        dropout = checks.fraction("dropout", dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers.append(nn.Linear(n_in, n_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        super().__init__(*layers)
        self.sizes = sizes

    @property
    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers, input first."""
        return [m for m in self if isinstance(m, nn.Linear)]


def init_weights(model: Model, scheme: str, gain: float = 1.0) -> Model:
    """Re-initialize every Linear/Conv weight of `model` in place and zero its biases.

    `scheme`: "default" (PyTorch's, U(+-1/sqrt(fan_in)) for the weights), "glorot" (normal,
    Var = 2/(fan_in + fan_out), Glorot & Bengio 2010), "he" (normal, Var = 2/fan_in, He et al.
    2015) or "normal" (std = gain/sqrt(fan_in)). Returns the model. Chapter 3.
    """
    checks.module("model", model)
    checks.one_of("scheme", scheme, ("default", "glorot", "he", "normal"))
    checks.positive_float("gain", gain)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "default":
                m.reset_parameters()
                continue
            if scheme == "glorot":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif scheme == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, std=gain / fan_in**0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
