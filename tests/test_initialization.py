"""course_lib.initialization: the forward signal against closed forms (chapter 3)."""
from __future__ import annotations

import math

import torch
from torch import nn

from course_lib.initialization import forward_profile


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
