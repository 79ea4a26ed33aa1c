"""Tests of the chapter 1/3/8 measurement modules: sharing, linear_regions, initialization,
invariance and diagrams (issue 15), against PyTorch and closed forms."""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch import nn
from torch.testing import assert_close

matplotlib.use("Agg")

from course_lib.diagrams import draw_convolution, draw_network  # noqa: E402
from course_lib.diagnostics import saturated_fraction  # noqa: E402
from course_lib.initialization import forward_profile  # noqa: E402
from course_lib.invariance import shift, shift_change  # noqa: E402
from course_lib.linear_regions import (  # noqa: E402
    activation_patterns,
    count_linear_regions,
    count_pieces_1d,
    plot_linear_regions,
    sawtooth_network,
)
from course_lib.models import MLP, count_parameters  # noqa: E402
from course_lib.sharing import LocallyConnected1d, linear_map_matrix  # noqa: E402


@pytest.mark.parametrize(
    "c_in,c_out,length,k,pad", [(1, 1, 40, 3, 1), (2, 3, 10, 5, 0), (4, 2, 7, 1, 2)]
)
def test_locally_connected_with_tied_weights_is_the_convolution(c_in, c_out, length, k, pad):
    torch.manual_seed(0)
    conv = nn.Conv1d(c_in, c_out, k, padding=pad)
    local = LocallyConnected1d.from_conv(conv, length)
    x = torch.randn(5, c_in, length)
    assert_close(local(x), conv(x), rtol=1e-5, atol=1e-5)
    out_length = length + 2 * pad - k + 1
    assert count_parameters(local) == out_length * count_parameters(conv)


def test_locally_connected_positions_have_their_own_weights():
    torch.manual_seed(0)
    local = LocallyConnected1d(1, 1, 12, 3, padding=1, bias=False)
    matrix = linear_map_matrix(local, 12)
    assert matrix.shape == (12, 12)
    assert (matrix.abs() > 0).sum() == 12 * 3 - 2  # a band of width 3, cut at the two ends
    assert not torch.allclose(matrix[3, 2:5], matrix[6, 5:8])  # not shared
    conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
    conv_matrix = linear_map_matrix(conv, 12)
    assert_close(conv_matrix[3, 2:5], conv_matrix[6, 5:8])  # shared


def test_linear_map_matrix_of_a_linear_layer_is_its_weight():
    layer = nn.Linear(6, 3, bias=False)
    assert_close(linear_map_matrix(layer, 6), layer.weight.detach())


@pytest.mark.parametrize(
    "bad",
    [
        lambda: LocallyConnected1d(0, 1, 5, 3),
        lambda: LocallyConnected1d(1, 1, 2, 5),
        lambda: LocallyConnected1d(1, 1, 5, 3, padding=-1),
        lambda: LocallyConnected1d(1, 1, 5, 3)(torch.zeros(2, 1, 6)),
        lambda: LocallyConnected1d.from_conv(nn.Conv1d(1, 1, 3, dilation=2), 10),
    ],
)
def test_locally_connected_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        bad()


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


def test_forward_profile_of_he_relu_keeps_the_second_moment():
    torch.manual_seed(0)
    width = 256
    model = nn.Sequential(
        *[m for _ in range(6) for m in (nn.Linear(width, width, bias=False), nn.ReLU())],
        nn.Linear(width, 10),
    )
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=math.sqrt(2 / width))
    profile = forward_profile(model, torch.randn(2000, width))
    assert len(profile) == 6
    for layer in profile:  # Var z = fan_in * (2 / fan_in) * E[h^2] = 2 E[h^2], and E[h^2] stays ~ 1
        assert 0.7 < layer.h_second_moment < 1.4
        assert layer.saturated == 0.0


def test_saturated_fraction_matches_the_closed_form_for_a_sigmoid_layer():
    torch.manual_seed(0)
    z = 4 * torch.randn(100_000, 1)
    model = nn.Sequential(nn.Identity(), nn.Sigmoid())
    # sigma'(z) < 0.025 <=> |z| > z0 with sigma(z0)(1 - sigma(z0)) = 0.025
    z0 = math.log((1 + math.sqrt(1 - 4 * 0.025)) / (1 - math.sqrt(1 - 4 * 0.025)))
    expected = (z.abs() > z0).float().mean().item()
    assert abs(saturated_fraction(model, z) - expected) < 1e-3
    with pytest.raises(ValueError, match="Sigmoid or nn.Tanh"):
        saturated_fraction(nn.Sequential(nn.ReLU()), z)


def test_shift_moves_with_zeros_and_global_pooling_is_almost_invariant():
    x = torch.arange(1.0, 6.0)
    assert_close(shift(x, 2), torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0]))
    assert_close(shift(x, -1), torch.tensor([2.0, 3.0, 4.0, 5.0, 0.0]))
    with pytest.raises(ValueError):
        shift(x, 5)
    images = torch.zeros(4, 1, 8, 8)
    images[:, :, 2:6, 2:6] = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    assert shift_change(lambda t: t.sum(dim=(2, 3)), images) < 1e-6  # the object stays inside
    assert shift_change(nn.Identity(), images) > 0.5


def test_diagrams_draw_and_validate():
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2)
    draw_network([3, 4, 2], ax=a)
    draw_convolution(7, 3, stride=2, padding=1, position=1, ax=b)
    assert "4 outputs" in b.get_title()
    plt.close(fig)
    with pytest.raises(ValueError):
        draw_network([3])
    with pytest.raises(ValueError):
        draw_convolution(5, 3, position=9)


def test_unshared_cnn_computes_the_same_function_with_more_parameters():
    from course_lib.cnn import CNN1d
    from course_lib.sharing import unshare

    torch.manual_seed(0)
    cnn = CNN1d()
    local = unshare(cnn, 40)
    x = torch.randn(7, 40)
    assert_close(local(x), cnn(x), rtol=1e-5, atol=1e-5)
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv1d)]
    locals_ = [m for m in local.modules() if isinstance(m, LocallyConnected1d)]
    assert [m.out_length for m in locals_] == [19, 10, 5]
    assert sum(count_parameters(m) for m in locals_) == sum(
        n * count_parameters(c) for n, c in zip([19, 10, 5], convs))
    with pytest.raises(ValueError, match="Conv1d"):
        unshare(nn.Linear(3, 3), 3)
