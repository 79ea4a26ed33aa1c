"""Diagnostics: the gradient-norm recorder's bookkeeping (norms paired with their steps)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.diagnostics import GradientNormRecorder, activation_stats, record_activations


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


# ---- diagnostics: activation statistics decided by hand --------------------------------------


class Fixed(nn.Module):
    """Returns a fixed activation tensor through an activation module (for its hook)."""

    def __init__(self, activation: nn.Module, values: torch.Tensor) -> None:
        super().__init__()
        self.act, self.values = activation, values

    def forward(self, x):
        return self.act(self.values)


def _one(activation, pre_activation):
    stats = activation_stats(Fixed(activation, pre_activation), torch.zeros(1))
    assert list(stats) == ["act"]
    return stats["act"]


def test_saturation_is_a_derivative_below_one_percent_of_its_maximum():
    # tanh: tanh' = 1 - tanh^2; below 0.01 from |x| > 2.99. Two of these four are saturated.
    tanh = _one(nn.Tanh(), torch.tensor([[0.0, 1.0, 3.2, -4.0]]))
    assert tanh.saturated == pytest.approx(0.5)
    # sigmoid: sigma' < 0.0025 from |x| > 5.99. One of four.
    assert _one(nn.Sigmoid(), torch.tensor([[0.0, 5.0, -7.0, 2.0]])).saturated == 0.25
    # hardtanh: flat where |output| reaches 1. Three of four (1.0 itself included).
    assert _one(nn.Hardtanh(), torch.tensor([[0.5, 1.0, 2.0, -3.0]])).saturated == 0.75
    # ReLU is not a saturating unit; a unit dead on every example is dead
    relu = _one(nn.ReLU(), torch.tensor([[-1.0, 2.0, -3.0, 0.0], [-1.0, -2.0, 3.0, 0.0]]))
    assert relu.saturated == 0.0 and relu.dead == 0.5  # units 0 and 3; units 1, 2 live once
    assert relu.mean == pytest.approx(5 / 8)
    values = torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    assert relu.std == pytest.approx(values.std().item())


def test_dead_units_of_feature_maps_and_of_a_single_vector():
    maps = torch.ones(3, 2, 2, 2)
    maps[:, 0, 1, 1] = -1.0  # one position of channel 0 is negative in every example
    stats = _one(nn.ReLU(), maps)
    assert stats.dead == pytest.approx(1 / 8)  # a unit is a (channel, row, column) position
    single = _one(nn.ReLU(), torch.tensor([-1.0, 2.0]))  # 1-D: one unit over a batch of two
    assert single.dead == 0.0 and single.std == pytest.approx(math.sqrt(2))
    assert _one(nn.ReLU(), torch.tensor([-1.0, -2.0])).dead == 1.0
    lone = _one(nn.ReLU(), torch.tensor([5.0]))
    assert lone.std == 0.0 and lone.dead == 0.0


def test_record_activations_names_the_layers_and_removes_its_hooks():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 3), nn.ReLU())
    x = torch.randn(4, 2)
    with record_activations(model) as outputs:
        y = model(x)
    assert list(outputs) == ["1", "3"] and torch.equal(outputs["3"], y)
    assert all(not m._forward_hooks for m in model.modules())
    with record_activations(model, layer_types=(nn.Linear,)) as outputs:
        model(x)
    assert list(outputs) == ["0", "2"]
    model.eval()
    activation_stats(model, x)
    assert not model.training  # the mode is left as it is
