"""course_lib.linear_regions: pieces and regions of ReLU networks, against closed forms
(chapter 1)."""
from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn
from torch.testing import assert_close

matplotlib.use("Agg")

from course_lib.linear_regions import (  # noqa: E402
    activation_patterns,
    count_linear_regions,
    count_pieces_1d,
    plot_linear_regions,
    sawtooth_network,
)
from course_lib.models import MLP  # noqa: E402


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_sawtooth_has_two_to_the_depth_pieces(depth):
    net = sawtooth_network(depth)
    x = (torch.arange(30_000) + 0.37) / 30_000  # inside (0, 1), never on a dyadic kink
    assert count_pieces_1d(net, x) == 2**depth
    with torch.no_grad():  # the tent map composed `depth` times, in closed form
        t = x.clone()
        for _ in range(depth):
            t = torch.where(t < 0.5, 2 * t, 2 - 2 * t)
        assert_close(net(x[:, None]).flatten(), t, rtol=1e-4, atol=1e-4)


def test_one_hidden_layer_in_one_dimension_has_at_most_n_plus_one_pieces():
    torch.manual_seed(0)
    for n in (1, 4, 16):
        model = MLP([1, n, 1])
        assert count_pieces_1d(model, torch.linspace(-50, 50, 20_001)) <= n + 1


def test_regions_of_one_relu_unit_in_2d():
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        model[0].bias.zero_()
    grid = torch.cartesian_prod(torch.linspace(-1, 1, 11), torch.linspace(-1, 1, 11))
    assert count_linear_regions(model, grid) == 2
    assert activation_patterns(model, grid).shape == (121, 1)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    assert plot_linear_regions(model, ax=ax, resolution=20) == 2
    plt.close(fig)


def test_linear_regions_reject_non_relu_models_and_unsorted_input():
    with pytest.raises(ValueError, match="ReLU"):
        count_linear_regions(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="increasing"):
        count_pieces_1d(sawtooth_network(1), torch.tensor([0.5, 0.1]))
    with pytest.raises(ValueError):
        sawtooth_network(0)
