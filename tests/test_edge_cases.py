"""Edge cases a reader hits (issue 24, item 6), one behavioural test each.

Kept beside the module tests they belong to in spirit: training (batch normalization with a last
batch of one, ReduceLROnPlateau, evaluate's batch size, binary accuracy), dtype and device taken
from the model (VAE sampling, multiply-add counting, a layer's matrix), the sparsity penalty in
half precision, and the gradient-norm recorder's bookkeeping. The learner's hanging loop is in
test_grading.py; the Makefile's TORCH stamp in test_makefile.py.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib as cl
from course_lib.autoencoders import sparsity_kl, sparsity_term
from course_lib.cnn import count_multiply_adds
from course_lib.diagnostics import GradientNormRecorder
from course_lib.layers import BatchNorm1d as CourseBatchNorm1d
from course_lib.sharing import linear_map_matrix


def _classification(n: int, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X[:, 0] > 0).long()


# ---- training ------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [nn.BatchNorm1d, CourseBatchNorm1d])
def test_batch_norm_trains_when_the_last_batch_holds_one_example(batch_norm):
    X, y = _classification(65)  # batches of 64 and 1
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), batch_norm(8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sizes = []
    model[1].register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    history = cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=2)
    assert sizes == [65, 65]  # the batch of one was merged into the one before it
    assert history.num_epochs == 2 and math.isfinite(history.last("loss"))


def test_a_model_without_batch_norm_keeps_its_last_batch_of_one():
    X, y = _classification(65)
    model = nn.Linear(4, 2)
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    cl.fit(model, X, y, loss_fn=F.cross_entropy,
           optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=1)
    assert sizes == [64, 1]


def test_batch_norm_on_a_single_example_is_a_clear_error():
    X, y = _classification(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="at least 2 training examples"):
        cl.fit(model, X, y, loss_fn=F.cross_entropy,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=1)


def _split(n_train: int = 128, n_val: int = 64):
    X, y = _classification(n_train + n_val)
    return cl.Split(X[:n_train], y[:n_train], X[n_train:], y[n_train:], X[:0], y[:0])


def test_a_plateau_schedule_in_a_run_steps_on_the_validation_loss():
    seen = []

    class Recording(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics, *args, **kwargs):
            seen.append(metrics)
            return super().step(metrics, *args, **kwargs)

    run = cl.Run(lambda: nn.Linear(4, 2), lr=0.05, num_epochs=3, optimizer="sgd",
                 schedule=lambda opt: Recording(opt, patience=0))
    result = cl.train(run, _split())
    assert seen == result.history["val_loss"]


def test_a_plateau_schedule_without_validation_is_a_clear_error():
    run = cl.Run(lambda: nn.Linear(4, 2), num_epochs=1,
                 schedule=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt))
    with pytest.raises(ValueError, match="validation loss"):
        cl.train(run, _split(n_val=0))


def test_evaluate_rejects_a_batch_size_of_zero():
    X, y = _classification(10)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        cl.evaluate(nn.Linear(4, 2), X, y, batch_size=0)


@pytest.mark.parametrize("shape", [(6, 1), (6,)])
@pytest.mark.parametrize("label_shape", [(6,), (6, 1)])
@pytest.mark.parametrize("label_dtype", [torch.long, torch.float32])
def test_accuracy_of_one_logit_per_example_is_binary(shape, label_shape, label_dtype):
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0, -0.2]).reshape(shape)
    labels = torch.tensor([1, 0, 0, 0, 1, 1], dtype=label_dtype).reshape(label_shape)
    assert cl.accuracy(logits, labels) == pytest.approx(4 / 6)


def test_accuracy_of_several_classes_is_unchanged_and_mismatched_rows_are_an_error():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert cl.accuracy(logits, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="3 rows but y has 2"):
        cl.accuracy(logits, torch.tensor([1, 0]))


# ---- dtype and device from the model -------------------------------------------------------


def test_a_vae_moved_to_float64_samples_in_float64():
    vae = cl.fully_connected_vae([6, 4, 2]).double()
    samples = vae.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.dtype == torch.float64 and samples.shape == (3, 6)


def test_multiply_adds_of_a_float64_model():
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6, 3)).double()
    assert count_multiply_adds(model, (1, 8)) == 2 * 6 * 3 + 12 * 3


def test_linear_map_matrix_of_a_float64_layer():
    layer = nn.Linear(3, 2, bias=False).double()
    matrix = linear_map_matrix(layer, 3)
    assert matrix.dtype == torch.float64
    torch.testing.assert_close(matrix, layer.weight.detach())


# ---- half precision ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_sparsity_penalty_is_finite_in_half_precision(dtype):
    rho_hat = torch.tensor([0.0, 1.0, 0.05, 0.5], dtype=dtype)  # a dead and a saturated unit
    penalty = sparsity_kl(0.05, rho_hat)
    assert torch.isfinite(penalty)
    expected = sparsity_kl(0.05, rho_hat.float())
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-2)


def test_the_sparsity_term_trains_a_half_precision_code_without_inf():
    class Coder(nn.Module):
        def encode(self, x):
            return torch.sigmoid(x)  # codes at 0 and 1 after rounding to half precision

    x = torch.tensor([[-30.0, 30.0, 0.0]], dtype=torch.float16)
    assert torch.isfinite(sparsity_term(0.05, 1.0)(Coder(), x))


# ---- the gradient-norm recorder ------------------------------------------------------------


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
