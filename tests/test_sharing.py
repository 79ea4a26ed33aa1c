"""course_lib.sharing: locally connected layers, unsharing a CNN, the matrix of a linear map
(chapter 8), against PyTorch's convolution and in the layer's own dtype."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.models import count_parameters
from course_lib.sharing import LocallyConnected1d, linear_map_matrix


def test_linear_map_matrix_of_a_float64_layer():
    layer = nn.Linear(3, 2, bias=False).double()
    matrix = linear_map_matrix(layer, 3)
    assert matrix.dtype == torch.float64
    torch.testing.assert_close(matrix, layer.weight.detach())


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
