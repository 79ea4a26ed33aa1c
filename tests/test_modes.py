"""Modes: `eval_mode` runs a block in evaluation mode and gives every submodule its mode back."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.modes import eval_mode


def _mixed() -> nn.Sequential:
    """A model in training mode whose batch-norm layer is frozen in evaluation mode."""
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5)).train()
    model[1].eval()
    return model


def test_the_block_sees_evaluation_mode_and_every_submodule_gets_its_own_mode_back():
    model = _mixed()
    with eval_mode(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_the_modes_come_back_after_an_error():
    model = _mixed()
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        raise RuntimeError("inside")
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_evaluation_is_deterministic_inside():
    model = _mixed()
    x = torch.randn(4, 3)
    with eval_mode(model):
        assert torch.equal(model(x), model(x))  # no dropout


def test_not_a_module_is_a_clear_error():
    with pytest.raises(TypeError, match="model must be an nn.Module"), eval_mode("net"):
        pass
