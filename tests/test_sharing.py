"""Locality and weight sharing: the matrix of a linear layer, in the layer's own dtype."""
from __future__ import annotations

import torch
from torch import nn

from course_lib.sharing import linear_map_matrix


def test_linear_map_matrix_of_a_float64_layer():
    layer = nn.Linear(3, 2, bias=False).double()
    matrix = linear_map_matrix(layer, 3)
    assert matrix.dtype == torch.float64
    torch.testing.assert_close(matrix, layer.weight.detach())
