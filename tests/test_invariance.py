"""course_lib.invariance: shifts and what global pooling keeps (chapter 8)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.invariance import shift, shift_change


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
