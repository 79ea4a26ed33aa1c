"""Diagnostics: the gradient-norm recorder's bookkeeping (norms paired with their steps)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.diagnostics import GradientNormRecorder


def test_the_recorder_pairs_each_norm_with_its_step_when_a_parameter_has_no_gradient():
    class TwoHeads(nn.Module):
        """Uses `second` only from step 1 on: it has no gradient at step 0 nor at step 2."""

        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Linear(2, 1), nn.Linear(2, 1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            out = self.first(x)
            return out + self.second(x) if self.calls == 2 else out

    model, recorder = TwoHeads(), GradientNormRecorder()
    x = torch.ones(4, 2)
    for step in range(3):
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        expected = {n: p.grad.norm().item() for n, p in model.named_parameters()
                    if p.grad is not None}
        recorder.after_backward(model, step)
        assert recorder.norms["first.weight"][step] == pytest.approx(expected["first.weight"])
    assert recorder.steps == [0, 1, 2]
    second = recorder.norms["second.weight"]  # no gradient at steps 0 and 2: NaN there
    assert math.isnan(second[0]) and math.isnan(second[2])
    assert second[1] == pytest.approx(4 * 2**0.5)  # d(sum of 4 rows of w.x)/dw = (4, 4)
    assert all(len(v) == 3 for v in recorder.norms.values())
    assert all(math.isfinite(g) for g in recorder.global_norms)
    first_only = sum(recorder.norms[k][0] ** 2 for k in ("first.weight", "first.bias")) ** 0.5
    assert recorder.global_norms[0] == pytest.approx(first_only)
