"""Diagnostics: the gradient-norm recorder's bookkeeping (norms paired with their steps), the one
computation of a gradient norm that every per-layer norm reads, and the one rule for "saturated"
that every saturation count applies."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import course_lib as cl
from course_lib.diagnostics import (
    SATURATION_THRESHOLD,
    GradientNormRecorder,
    activation_stats,
    gradient_norms,
    record_activations,
    saturated_fraction,
    saturation,
)
from course_lib.gradients import layer_gradient_norms, linear_weight_names
from course_lib.initialization import forward_profile


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


def _sigmoid_cut(threshold):
    # sigma'(a) = s (1 - s) < threshold / 4  <=>  |a| > log((1 + r) / (1 - r)),
    # with r = sqrt(1 - threshold)
    r = math.sqrt(1 - threshold)
    return math.log((1 + r) / (1 - r))


@pytest.mark.parametrize("threshold", [SATURATION_THRESHOLD, 0.01, 0.5])
def test_saturation_matches_the_closed_form_cut_offs_of_sigmoid_and_tanh(threshold):
    a = torch.linspace(-8, 8, 16_001, dtype=torch.float64)
    sigmoid_cut = _sigmoid_cut(threshold)
    tanh_cut = math.atanh(math.sqrt(1 - threshold))  # tanh' = 1 - tanh^2 < threshold
    for module, cut in [(nn.Sigmoid(), sigmoid_cut), (nn.Tanh(), tanh_cut)]:
        expected = (a.abs() > cut).double().mean().item()
        got = saturation(module, module(a), threshold)
        assert got == pytest.approx(expected, abs=2 / len(a))  # the grid point at the cut-off
    assert saturation(nn.ReLU(), torch.relu(a), threshold) == 0.0


def test_the_default_rule_is_a_derivative_below_a_tenth_of_its_maximum():
    assert SATURATION_THRESHOLD == 0.1
    assert _sigmoid_cut(0.1) == pytest.approx(3.6369, abs=1e-4)
    # sigma'(3.6) = 0.0255 > 0.025: not saturated; sigma'(3.7) = 0.0237: saturated
    h = torch.sigmoid(torch.tensor([3.6, 3.7, -3.7, 0.0]))
    assert saturation(nn.Sigmoid(), h) == 0.5
    # hardtanh and ReLU6 (a hardtanh between 0 and 6): flat where the output is clipped
    assert saturation(nn.Hardtanh(), torch.tensor([0.5, 1.0, -1.0, 0.0])) == 0.5
    assert saturation(nn.ReLU6(), torch.tensor([0.0, 3.0, 6.0, 5.9])) == 0.5
    with pytest.raises(ValueError, match="threshold"):
        saturation(nn.Sigmoid(), h, threshold=1.5)


def test_every_saturation_count_of_one_model_gives_the_same_number():
    # The reproducer: one model, three functions, once three answers (0.2%, 6.8%, 9.4%).
    torch.manual_seed(0)
    model = cl.deep_mlp(16, 4, depth=3, width=32, activation=nn.Sigmoid, scheme="normal", gain=6)
    X = torch.randn(500, 16)
    whole = saturated_fraction(model, X)
    layers = [s.saturated for s in activation_stats(model, X).values()]
    profile = [layer.saturated for layer in forward_profile(model, X)]
    assert layers == pytest.approx(profile)
    assert whole == pytest.approx(sum(layers) / len(layers))  # equal-sized layers
    assert 0.05 < whole < 0.95  # the test means something: some, not all, saturated
    # and each equals the closed form on that layer's pre-activations
    z, per_layer = X, []
    for module in model:
        z = module(z)
        if isinstance(module, nn.Linear):
            a = z
        elif isinstance(module, nn.Sigmoid):
            per_layer.append((a.abs() > _sigmoid_cut(0.1)).float().mean().item())
    assert layers == pytest.approx(per_layer, abs=1e-3)


def test_gradient_norms_match_torch_and_are_what_every_per_layer_norm_reads():
    torch.manual_seed(0)
    model = cl.deep_mlp(5, 3, depth=4, width=7, activation=nn.Tanh)
    X, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
    per_layer = layer_gradient_norms(model, X, y)  # runs the backward pass
    names = linear_weight_names(model)
    assert list(per_layer) == names
    params = dict(model.named_parameters())
    for name in names:  # PyTorch's own norm of the same gradient
        torch_norm = torch.linalg.vector_norm(params[name].grad).item()
        assert per_layer[name] == pytest.approx(torch_norm, rel=1e-6)
    assert gradient_norms(model, names) == per_layer
    everything = gradient_norms(model)
    assert list(everything) == list(params)  # every parameter, in the model's order
    assert all(everything[name] == per_layer[name] for name in names)
    recorder = GradientNormRecorder()
    recorder.after_backward(model, 0)
    assert {name: recorder.norms[name][0] for name in names} == per_layer
    assert math.sqrt(sum(v**2 for v in everything.values())) == pytest.approx(
        recorder.global_norms[0]
    )


def test_gradient_norms_of_named_parameters_without_a_gradient_are_none():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[1](torch.ones(1, 2)).sum().backward()  # the first layer is never reached
    norms = gradient_norms(model, ["0.weight", "1.weight"])
    assert norms["0.weight"] is None and norms["1.weight"] == pytest.approx(math.sqrt(2))
    assert list(gradient_norms(model)) == ["1.weight", "1.bias"]
    with pytest.raises(ValueError, match="no parameter named"):
        gradient_norms(model, ["2.weight"])
    with pytest.raises(ValueError, match="backward"):
        gradient_norms(nn.Linear(2, 2))


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


def test_saturation_is_a_derivative_below_a_tenth_of_its_maximum():
    # tanh: tanh' = 1 - tanh^2; below 0.1 from |x| > 1.82. Two of these four are saturated.
    tanh = _one(nn.Tanh(), torch.tensor([[0.0, 1.0, 3.2, -4.0]]))
    assert tanh.saturated == pytest.approx(0.5)
    # sigmoid: sigma' < 0.025 from |x| > 3.64. One of four.
    assert _one(nn.Sigmoid(), torch.tensor([[0.0, 3.5, -7.0, 2.0]])).saturated == 0.25
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
