"""course_lib.initialization: the forward signal and saturation against closed forms (chapter 3)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.initialization import forward_profile, saturated_fraction


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
