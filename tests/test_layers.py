"""Tests of course_lib.layers against torch.nn.BatchNorm1d and closed forms, and of the
chapter 4 exercises."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import course_lib as cl
from course_lib.grading import exercises_of, grade_solution, self_test
from course_lib.layers import BatchNorm1d, batchnorm_layers, fold_batchnorm, fold_network

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _pair(
    num_features: int, momentum: float | None, seed: int = 0
) -> tuple[BatchNorm1d, nn.BatchNorm1d]:
    """Ours and PyTorch's layer with the same non-trivial scale and shift."""
    g = torch.Generator().manual_seed(seed)
    ours, theirs = (
        BatchNorm1d(num_features, momentum=momentum),
        nn.BatchNorm1d(num_features, momentum=momentum),
    )
    with torch.no_grad():
        gamma, beta = (
            1 + 0.5 * torch.randn(num_features, generator=g),
            torch.randn(num_features, generator=g),
        )
        for layer in (ours, theirs):
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)
    return ours, theirs


def _step(layer: nn.Module, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Output and the gradients of sum(w * output) with respect to input, weight and bias."""
    x = x.clone().requires_grad_(True)
    layer.zero_grad()
    y = layer(x)
    (w * y).sum().backward()
    return y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone()


@pytest.mark.parametrize("shape", [(2, 3), (8, 1), (16, 5), (32, 64), (4, 3, 7), (1, 2, 5)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 0.0, 1.0, None])
def test_matches_pytorch_over_several_steps_in_training_and_eval_mode(shape, momentum):
    ours, theirs = _pair(shape[1], momentum)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = 3 * torch.randn(shape, generator=g) + torch.randn(
            shape[1], *([1] * (len(shape) - 2)), generator=g
        )
        w = torch.randn(shape, generator=g)
        for a, b in zip(_step(ours, x, w), _step(theirs, x, w)):
            assert_close(a, b, **TOL)
        for name, buffer in theirs.named_buffers():
            assert_close(getattr(ours, name), buffer, **TOL)
    ours.eval(), theirs.eval()
    x = torch.randn(shape, generator=g)
    w = torch.randn(shape, generator=g)
    for a, b in zip(_step(ours, x, w), _step(theirs, x, w)):
        assert_close(a, b, **TOL)
    assert int(ours.num_batches_tracked) == 4  # eval mode leaves the statistics alone


def test_state_dict_names_are_pytorchs_and_load_both_ways():
    ours, theirs = _pair(4, 0.1)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]
    theirs(torch.randn(10, 4))
    ours.load_state_dict(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(3, 4)
    assert_close(ours(x), theirs(x))


def test_the_chapter_example_in_closed_form():
    layer = BatchNorm1d(1)
    y = layer(torch.tensor([[1.0], [2.0], [3.0], [6.0]]))  # mean 3, biased var 3.5, unbiased 14/3
    assert_close(
        y.detach().flatten(),
        (torch.tensor([1.0, 2.0, 3.0, 6.0]) - 3) / torch.sqrt(torch.tensor(3.5 + 1e-5)),
    )
    assert_close(layer.running_mean, torch.tensor([0.3]))
    assert_close(layer.running_var, torch.tensor([0.9 + 0.1 * 14 / 3]))
    assert_close(
        y.detach().flatten(), torch.tensor([-1.069, -0.535, 0.0, 1.604]), rtol=0, atol=1e-3
    )


def test_momentum_none_is_the_cumulative_average_and_counts_batches():
    layer = BatchNorm1d(3, momentum=None)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(6, 3, generator=g) * (i + 1) + i for i in range(5)]
    for i, x in enumerate(batches, start=1):
        layer(x)
        assert int(layer.num_batches_tracked) == i
        assert_close(
            layer.running_mean, torch.stack([b.mean(0) for b in batches[:i]]).mean(0), **TOL
        )
        assert_close(layer.running_var, torch.stack([b.var(0) for b in batches[:i]]).mean(0), **TOL)
    layer.reset_running_stats()  # the average starts afresh
    layer(batches[-1])
    assert_close(layer.running_mean, batches[-1].mean(0))
    assert int(layer.num_batches_tracked) == 1


def test_momentum_float_counts_batches_too():
    ours, theirs = _pair(2, 0.1)
    for _ in range(3):
        x = torch.randn(5, 2)
        ours(x), theirs(x)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3


def test_batch_of_one_in_training_mode_is_a_clear_error_and_fine_in_eval_mode():
    layer = BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one value per feature"):
        layer(torch.randn(1, 3))
    assert int(layer.num_batches_tracked) == 0 and torch.equal(layer.running_mean, torch.zeros(3))
    with pytest.raises(ValueError):  # PyTorch agrees
        nn.BatchNorm1d(3)(torch.randn(1, 3))
    layer.eval()
    assert layer(torch.randn(1, 3)).shape == (1, 3)


@pytest.mark.parametrize("bad", [0, -2, 2.5, "3", True])
def test_bad_num_features(bad):
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm1d(bad)


@pytest.mark.parametrize(
    "kwargs",
    [{"eps": 0}, {"eps": -1e-5}, {"momentum": 1.5}, {"momentum": -0.1}, {"momentum": "0.1"}],
)
def test_bad_eps_or_momentum(kwargs):
    with pytest.raises(ValueError):
        BatchNorm1d(3, **kwargs)


@pytest.mark.parametrize("shape", [(4,), (4, 2), (4, 3, 2, 2), (4, 5, 3)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        BatchNorm1d(3)(torch.randn(shape))


def test_not_a_tensor():
    with pytest.raises(TypeError):
        BatchNorm1d(3)([[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("n_in,n_out", [(1, 1), (5, 3), (3, 8), (64, 64)])
@pytest.mark.parametrize("kind", ["torch", "ours"])
@pytest.mark.parametrize("linear_bias", [True, False])
def test_fold_batchnorm_equals_linear_then_bn_in_eval_mode(n_in, n_out, kind, linear_bias):
    torch.manual_seed(3)
    linear = nn.Linear(n_in, n_out, bias=linear_bias)
    bn = nn.BatchNorm1d(n_out) if kind == "torch" else BatchNorm1d(n_out)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
    for _ in range(3):  # non-trivial running statistics
        bn(linear(2 * torch.randn(16, n_in) + 1))
    bn.eval()
    before = {k: v.clone() for k, v in {**linear.state_dict(), **bn.state_dict()}.items()}
    folded = fold_batchnorm(linear, bn)
    x = torch.randn(10, n_in)
    assert isinstance(folded, nn.Linear) and folded.bias is not None
    assert_close(folded(x), bn(linear(x)), **TOL)
    after = {**linear.state_dict(), **bn.state_dict()}
    assert all(torch.equal(before[k], after[k]) for k in before)  # the inputs are untouched


def test_fold_batchnorm_closed_form_and_rng_untouched():
    linear = nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        linear.bias.copy_(torch.tensor([1.0, -1.0]))
    bn = nn.BatchNorm1d(2, eps=0.0 + 1e-12).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([2.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.5, 0.0]))
    state = torch.random.get_rng_state()
    folded = fold_batchnorm(linear, bn)
    assert torch.equal(state, torch.random.get_rng_state())
    # s = gamma / sqrt(var) = [1, 2]; W' = diag(s) W; b' = s (b - mean) + beta = [0.5, -6]
    assert_close(folded.weight, torch.tensor([[1.0, 2.0], [6.0, 8.0]]))
    assert_close(folded.bias, torch.tensor([0.5, -6.0]))


def test_fold_batchnorm_without_affine_parameters():
    linear, bn = nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)
    bn(linear(torch.randn(8, 3)))
    bn.eval()
    x = torch.randn(5, 3)
    assert_close(fold_batchnorm(linear, bn)(x), bn(linear(x)), **TOL)


def test_fold_batchnorm_bad_input():
    with pytest.raises(TypeError, match="torch.nn.Linear"):
        fold_batchnorm(nn.Conv1d(1, 1, 1), nn.BatchNorm1d(1))
    with pytest.raises(TypeError, match="BatchNorm1d"):
        fold_batchnorm(nn.Linear(2, 2), nn.LayerNorm(2))
    with pytest.raises(ValueError, match="normalizes 3 features but linear outputs 2"):
        fold_batchnorm(nn.Linear(2, 2), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="running statistics"):
        fold_batchnorm(nn.Linear(2, 2), nn.BatchNorm1d(2, track_running_stats=False))


class _NoisyBatchNorm1d(BatchNorm1d):
    pass


def test_batchnorm_layers_finds_torch_ours_and_subclasses_in_order():
    model = cl.MLP([4, 8, 8, 8, 2], batch_norm=True)
    model[2], model[8] = BatchNorm1d(8), _NoisyBatchNorm1d(8)  # torch's stays at index 5
    found = batchnorm_layers(nn.Sequential(model, nn.LayerNorm(2)))
    assert found == [model[2], model[5], model[8]]
    assert batchnorm_layers(cl.MLP([4, 2])) == []
    with pytest.raises(TypeError, match="nn.Module"):
        batchnorm_layers([model])


@pytest.mark.parametrize("kind", [nn.BatchNorm1d, BatchNorm1d, _NoisyBatchNorm1d])
def test_fold_network_computes_the_same_function_with_fewer_parameters(kind):
    torch.manual_seed(0)
    model = cl.MLP([6, 16, 16, 3], batch_norm=True)
    model[2], model[5] = kind(16), kind(16)
    for _ in range(3):  # non-trivial running statistics
        model(3 * torch.randn(32, 6) + 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    folded = fold_network(model)
    assert [type(m).__name__ for m in folded] == [
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert not folded.training
    x = torch.randn(10, 6)
    assert_close(folded(x), model(x), **TOL)
    assert cl.count_parameters(folded) == cl.count_parameters(model) - 2 * 2 * 16
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # model untouched
    with pytest.raises(TypeError, match="nn.Sequential"):
        fold_network(nn.Linear(2, 2))


def test_the_chapter_4_exercises_pass_their_self_test():
    ids = [e.id for e in exercises_of("batchnorm")]
    assert len(ids) >= 4
    assert self_test(ids) == []


@pytest.mark.parametrize("candidate", [BatchNorm1d, nn.BatchNorm1d])
def test_the_library_layer_and_pytorchs_pass_the_module_exercise(candidate):
    assert grade_solution("batchnorm.BatchNorm1d", candidate).passed


def test_accuracy_in_train_mode_uses_batch_statistics_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), BatchNorm1d(4), nn.Linear(4, 2)).eval()
    X, y = torch.randn(12, 3), torch.randint(0, 2, (12,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained = nn.Sequential(*model).train()  # the same modules, in training mode
    with torch.no_grad():
        expected = torch.cat([trained(X[:5]), trained(X[5:10]), trained(X[10:])])
    model.eval()
    for k, v in model.state_dict().items():  # undo the update made to compute `expected`
        v.copy_(before[k])
    accuracy = cl.layers.accuracy_in_train_mode(model, X, y, 5)
    assert accuracy == (expected.argmax(dim=1) == y).float().mean().item()
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"


@pytest.mark.parametrize("batch_size", [0, 2.0, True])
def test_accuracy_in_train_mode_bad_batch_size(batch_size):
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="batch_size"):
        cl.layers.accuracy_in_train_mode(model, torch.randn(4, 3), torch.zeros(4), batch_size)


def test_layer_norm_takes_a_single_vector_and_group_norm_names_a_bad_eps():
    from course_lib.layers import GroupNorm, LayerNorm

    x = torch.randn(6)
    torch.testing.assert_close(LayerNorm(6)(x), F.layer_norm(x, (6,)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="eps"):
        GroupNorm(2, 4, eps=0.0)


def test_batch_norm_counts_batches_in_an_integer_buffer_like_torch():
    from course_lib.layers import BatchNorm1d

    ours, theirs = BatchNorm1d(3), nn.BatchNorm1d(3)
    assert ours.num_batches_tracked.dtype == theirs.num_batches_tracked.dtype == torch.long
    with pytest.raises(ValueError, match="^eps"):
        BatchNorm1d(3, eps=0.0)
