"""The one training loop and its experiment record: what `fit` logs and what `train` runs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib as cl
from course_lib.layers import BatchNorm1d as CourseBatchNorm1d


def _regression(n: int = 100):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g)
    return X, X @ torch.tensor([[1.0], [-1.0], [2.0]])


def _sgd(model, lr=0.1):
    return torch.optim.SGD(model.parameters(), lr=lr)


def test_a_diverged_epoch_logs_nan_for_every_key():
    d = cl.make_moons(200)
    model = cl.MLP([2, 16, 2])
    h = cl.fit(model, d.X_train * 1e4, d.y_train, loss_fn=F.cross_entropy,
               optimizer=_sgd(model, lr=1e6), num_epochs=20, validation=(d.X_val, d.y_val))
    assert h.diverged and h.num_epochs < 20
    assert {len(v) for v in h.metrics.values()} == {h.num_epochs}
    assert set(h.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert math.isnan(h.last("val_accuracy")) and math.isnan(h.last("accuracy"))
    assert cl.format_score(h.last("val_accuracy")) == "diverged"


def test_logged_loss_is_the_example_weighted_mean_with_an_uneven_last_batch():
    X, y = _regression(10)
    model = nn.Linear(3, 1)
    before = F.mse_loss(model(X), y, reduction="none").squeeze(1)
    cl.seed_everything(0)
    order = torch.randperm(10)
    cl.seed_everything(0)
    h = cl.fit(model, X, y, loss_fn=F.mse_loss, optimizer=_sgd(model, lr=0.0), num_epochs=1,
               batch_size=4, metrics={})  # lr 0: every batch sees the initial weights
    assert order.tolist() != list(range(10))
    assert h.last("loss") == pytest.approx(before.mean().item(), rel=1e-6)


def test_training_accuracy_is_scored_against_the_shuffled_labels():
    X = torch.eye(6)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    model = nn.Linear(6, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1] = torch.tensor([0.0, 1, 0, 1, 0, 1])  # predicts y exactly
    h = cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=_sgd(model, lr=0.0),
               num_epochs=2, batch_size=4)
    assert h["accuracy"] == [1.0, 1.0]


def test_autoencoder_target_is_the_clean_input_and_corruption_is_fresh_per_batch():
    X = torch.arange(12.0).reshape(6, 2)
    seen = []

    def loss_fn(output, target):
        seen.append(target.clone())
        return F.mse_loss(output, target)

    corrupted = []

    def transform(x):
        noisy = x + torch.randn_like(x)
        corrupted.append((x.clone(), noisy))
        return noisy

    model = nn.Linear(2, 2)
    h = cl.fit(model, X, loss_fn=loss_fn, optimizer=_sgd(model, lr=0.0), num_epochs=2,
               batch_size=2, transform=transform, validation=X)
    assert set(h.keys()) == {"loss", "val_loss"}  # no accuracy without labels
    train_targets = seen[:3] + seen[4:7]  # the 4th and 8th calls are validation
    for target, (clean, noisy) in zip(train_targets, corrupted):
        torch.testing.assert_close(target, clean)
        assert not torch.equal(noisy, clean)
    torch.testing.assert_close(seen[3], X)  # validation: clean input, no transform
    assert len({tuple(n.flatten().tolist()) for _, n in corrupted}) == 6


def test_dict_losses_and_penalties_are_logged_as_terms_that_add_up():
    X, y = _regression()
    model = nn.Linear(3, 1)

    def loss_fn(output, target):
        mse = F.mse_loss(output, target)
        return {"loss": 2 * mse, "mse": mse}

    def l1(m, x):
        return 0.01 * m.weight.abs().sum()

    h = cl.fit(model, X, y, loss_fn=loss_fn, optimizer=_sgd(model, lr=0.0), num_epochs=1,
               batch_size=100, metrics={}, penalties={"l1": l1}, validation=(X, y))
    expected_mse = F.mse_loss(model(X), y).item()
    assert h.last("mse") == pytest.approx(expected_mse, rel=1e-6)
    assert h.last("data_loss") == pytest.approx(2 * expected_mse, rel=1e-6)
    assert h.last("l1") == pytest.approx(l1(model, X).item(), rel=1e-6)
    assert h.last("loss") == pytest.approx(h.last("data_loss") + h.last("l1"), rel=1e-6)
    assert h.last("val_loss") == pytest.approx(h.last("loss"), rel=1e-6)


def test_penalties_change_the_gradient():
    X, y = _regression()
    cl.seed_everything(5)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    cl.seed_everything(0)
    cl.fit(a, X, y, loss_fn=F.mse_loss, optimizer=_sgd(a), num_epochs=1, metrics={})
    cl.seed_everything(0)
    cl.fit(b, X, y, loss_fn=F.mse_loss, optimizer=_sgd(b), num_epochs=1, metrics={},
           penalties={"l2": lambda m, x: 1.0 * (m.weight ** 2).sum()})
    assert b.weight.norm() < a.weight.norm()


def test_evaluate_concatenates_tuple_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return x * 2, x.sum(dim=1)

    X = torch.randn(10, 3)
    seen = {}

    def loss_fn(output, target):
        seen["shapes"] = [tuple(o.shape) for o in output]
        return F.mse_loss(output[0], target)

    out = cl.evaluate(Pair(), X, loss_fn=loss_fn, batch_size=4)
    assert seen["shapes"] == [(10, 3), (10,)]
    assert out["loss"] == pytest.approx(F.mse_loss(2 * X, X).item(), rel=1e-6)


def test_evaluate_and_fit_switch_modes():
    modes = []

    class Spy(nn.Linear):
        def forward(self, x):
            modes.append(self.training)
            return super().forward(x)

    d = cl.make_moons(100)
    model = Spy(2, 2)
    model.eval()
    cl.fit(model, d.X_train, d.y_train, loss_fn=F.cross_entropy, optimizer=_sgd(model),
           num_epochs=1, batch_size=1000, validation=(d.X_val, d.y_val))
    assert modes == [True, False] and model.training


def test_a_callback_can_stop_training_and_the_scheduler_steps_once_per_epoch():
    X, y = _regression()
    model = nn.Linear(3, 1)
    optimizer = _sgd(model, lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    lrs = []

    class StopAt(cl.Callback):
        def on_epoch_end(self, epoch, logs):
            lrs.append(optimizer.param_groups[0]["lr"])
            return epoch == 2

    h = cl.fit(model, X, y, loss_fn=F.mse_loss, optimizer=optimizer, num_epochs=10,
               batch_size=10, metrics={}, scheduler=scheduler, callbacks=[StopAt()])
    assert h.stopped and h.num_epochs == 3 and lrs == [1.0, 0.5, 0.25]


def test_train_is_reproducible_per_seed_and_validates_on_the_split():
    d = cl.make_moons(300)
    run = cl.Run(lambda: cl.MLP([2, 16, 2]), lr=0.01, num_epochs=5)
    a, b = cl.train(run, d), cl.train(run, d)
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict(), rtol=0, atol=0)
    assert a.history["val_accuracy"] == b.history["val_accuracy"]
    c = cl.train(run, d, seed=1)
    assert c.run.seed == 1
    assert not torch.equal(c.model.state_dict()["1.weight"], a.model.state_dict()["1.weight"])
    results = cl.train_seeds(run, d, seeds=[0, 1])
    assert [r.run.seed for r in results] == [0, 1]
    assert results[0].history["loss"] == a.history["loss"]


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                        ("adamw", torch.optim.AdamW)])
def test_make_optimizer_builds_what_the_run_names(name, kind):
    run = cl.Run(lambda: nn.Linear(2, 2), lr=0.3, optimizer=name, weight_decay=0.01)
    optimizer = cl.make_optimizer(run, run.make_model())
    assert isinstance(optimizer, kind)
    assert optimizer.param_groups[0]["lr"] == 0.3
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_train_an_autoencoder_run_with_a_schedule():
    d = cl.load_digits()
    run = cl.Run(lambda: nn.Sequential(nn.Linear(64, 8), nn.Linear(8, 64)), lr=0.01,
                 num_epochs=3, loss_fn=F.mse_loss, target="input",
                 schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.1))
    r = cl.train(run, d)
    assert set(r.history.keys()) == {"loss", "val_loss"}
    assert r.history["loss"][-1] < r.history["loss"][0]


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1.0}, "lr"), ({"target": "labels"}, "target"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr": True}, "lr"),
])
def test_run_rejects_bad_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cl.Run(lambda: nn.Linear(2, 2), **kwargs)


def test_fit_rejects_bools_and_bad_losses():
    X, y = _regression()
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="num_epochs"):
        cl.fit(model, X, y, loss_fn=F.mse_loss, optimizer=_sgd(model), num_epochs=True)
    with pytest.raises(TypeError, match="loss_fn"):
        cl.fit(model, X, y, loss_fn=lambda a, b: 1.0, optimizer=_sgd(model), num_epochs=1,
               metrics={})
    with pytest.raises(ValueError, match="scalar"):
        cl.fit(model, X, y, loss_fn=lambda a, b: (a - b) ** 2, optimizer=_sgd(model),
               num_epochs=1, metrics={})
    with pytest.raises(TypeError, match="Split"):
        cl.train(cl.Run(lambda: model), (X, y))


def test_summaries():
    assert cl.mean_std([0.5]) == (0.5, 0.0)
    mean, std = cl.mean_std([0.4, 0.6])
    assert mean == pytest.approx(0.5) and std == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert cl.format_score(0.4567) == "45.7%"
    assert cl.format_mean_std([0.4, 0.6]) == "50.0 ± 14.1%"
    assert cl.format_mean_std([0.4, float("nan")]) == "diverged (1 of 2 seeds)"


def test_paired_differences_and_standard_error():
    a, b = [0.40, 0.45, 0.50], [0.43, 0.44, 0.56]
    assert cl.paired_differences(a, b) == pytest.approx([0.03, -0.01, 0.06])
    d = np.array(b) - np.array(a)
    assert cl.standard_error(d) == pytest.approx(np.std(d, ddof=1) / np.sqrt(3))
    assert cl.standard_error([0.7]) == 0.0
    with pytest.raises(ValueError, match="same length"):
        cl.paired_differences([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="same length"):
        cl.paired_differences([], [])


def test_history_at_reads_one_run_at_a_shorter_budget():
    h = cl.History({"val_accuracy": [0.5, 0.7, 0.9]})
    assert h.at("val_accuracy", 1) == 0.5 and h.at("val_accuracy", 3) == h.last("val_accuracy")
    with pytest.raises(ValueError, match="at most 3"):
        h.at("val_accuracy", 4)
    with pytest.raises(ValueError, match="epoch"):
        h.at("val_accuracy", 0)
    with pytest.raises(KeyError, match="loss"):
        h.at("loss", 1)


def test_plot_runs_draws_the_mean_over_seeds_and_pads_stopped_runs():
    a = cl.History({"val_accuracy": [0.5, 0.7, 0.9]})
    b = cl.History({"val_accuracy": [0.3, 0.5]})
    ax = cl.plot_runs({"two seeds": [a, b], "one": a})
    mean = ax.lines[0].get_ydata()
    np.testing.assert_allclose(mean, [40.0, 60.0, 90.0])
    assert len(ax.collections) == 1  # a band for the label with two seeds only
    assert ax.get_ylabel() == "val_accuracy (%)"
    with pytest.raises(KeyError, match="loss"):
        cl.plot_runs({"a": a}, key="loss")
    with pytest.raises(TypeError, match="Result"):
        cl.plot_runs({"a": [1, 2]})


def test_evaluate_concatenates_named_tuple_outputs():
    from typing import NamedTuple

    class Out(NamedTuple):
        x_hat: torch.Tensor
        code: torch.Tensor

    class Model(nn.Module):
        def forward(self, x):
            return Out(x * 2, x.sum(dim=1))

    X = torch.randn(10, 3)
    out = cl.evaluate(Model(), X, loss_fn=lambda o, t: F.mse_loss(o.x_hat, t), batch_size=4)
    assert out["loss"] == pytest.approx(F.mse_loss(2 * X, X).item(), rel=1e-6)


def test_the_first_epochs_of_a_long_run_are_a_short_run():
    # what chapters 4 and 6 rely on: Adam at a constant rate, nothing depends on num_epochs
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 5, generator=g), torch.randint(0, 3, (96,), generator=g)
    data = cl.Split(X, y, X[:32], y[:32], X[:0], y[:0])
    run = cl.Run(lambda: cl.MLP([5, 8, 3], dropout=0.3), lr=1e-2, num_epochs=5, batch_size=32)
    long = cl.train(run, data).history
    short = cl.train(run.replace(num_epochs=2), data).history
    for key in ("loss", "val_accuracy", "val_loss"):
        assert long.at(key, 2) == pytest.approx(short.last(key), rel=1e-6, abs=1e-7)


# ---- edge cases a reader hits (issue 24) --------------------------------------------------


def _classification(n: int, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X[:, 0] > 0).long()


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
    with pytest.raises(ValueError, match=r"labels of shape \(N,\), got \(3, 2\) and \(3, 1\)"):
        cl.accuracy(logits, torch.tensor([[1], [0], [0]]))  # would broadcast to (3, 3)
    per_position = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])  # (N, C, L): arg-max over C
    assert cl.accuracy(per_position, torch.tensor([[0, 0]])) == pytest.approx(0.5)


# ---- fit and evaluate: what is logged -------------------------------------------------------


def _three_classes(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    return X, torch.randint(0, 3, (n,), generator=g)


def _frozen_fit(model, X, y, **kwargs):
    """`fit` with SGD at lr 0: the model never changes, so every logged number is computable."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return cl.fit(model, X, y, optimizer=optimizer, **kwargs)


def test_at_lr_0_fit_logs_the_loss_and_accuracy_of_the_model_on_the_data():
    torch.manual_seed(0)
    X, y = _three_classes(103)  # batches of 10: the last one has 3 examples
    X_val, y_val = _three_classes(37, seed=1)
    model = nn.Linear(5, 3)
    with torch.no_grad():
        loss, acc = F.cross_entropy(model(X), y).item(), cl.accuracy(model(X), y)
        val_loss, val_acc = F.cross_entropy(model(X_val), y_val).item(), cl.accuracy(
            model(X_val), y_val)
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=3, batch_size=10,
                    validation=(X_val, y_val))
    assert h.num_epochs == 3 and not h.diverged and not h.stopped
    for key, expected in [("loss", loss), ("accuracy", acc), ("val_loss", val_loss),
                          ("val_accuracy", val_acc)]:
        assert h[key] == pytest.approx([expected] * 3, rel=1e-5), key
    assert 0.2 < acc < 0.6  # a real mix of right and wrong answers, not all or nothing


def test_at_lr_0_every_metric_sees_each_example_with_its_own_label():
    X, y = _three_classes(64)
    model = nn.Linear(5, 3)
    seen = []

    def count_right(output, target):
        seen.append(len(target))
        return (output.argmax(1) == target).sum().item()

    with torch.no_grad():
        right = (model(X).argmax(1) == y).sum().item()
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=2, batch_size=7,
                    metrics={"right": count_right})
    assert h["right"] == [right, right] and seen == [64, 64]
    assert set(h.keys()) == {"loss", "right"}  # the given metrics replace the default accuracy


def test_at_lr_0_an_autoencoder_logs_its_reconstruction_loss_and_terms():
    X, _ = _three_classes(50)
    model = nn.Linear(5, 5)

    def loss_fn(output, target):
        mse = F.mse_loss(output, target)
        return {"loss": 2 * mse, "mse": mse}

    with torch.no_grad():
        mse = F.mse_loss(model(X), X).item()
    penalty = {"l1": lambda m, x: 0.01 * m.weight.abs().sum()}
    with torch.no_grad():
        l1 = 0.01 * model.weight.abs().sum().item()
    h = _frozen_fit(model, X, None, loss_fn=loss_fn, num_epochs=1, batch_size=16,
                    validation=X, penalties=penalty)
    assert set(h.keys()) == {"loss", "mse", "data_loss", "l1", "val_loss", "val_mse",
                             "val_data_loss", "val_l1"}
    for prefix in ("", "val_"):
        assert h[prefix + "mse"][0] == pytest.approx(mse, rel=1e-5)
        assert h[prefix + "data_loss"][0] == pytest.approx(2 * mse, rel=1e-5)
        assert h[prefix + "l1"][0] == pytest.approx(l1, rel=1e-5)
        assert h[prefix + "loss"][0] == pytest.approx(2 * mse + l1, rel=1e-5)


def test_evaluate_returns_the_loss_terms_and_metrics_of_the_whole_set_in_batches():
    X, y = _three_classes(45)
    model = nn.Linear(5, 3)
    with torch.no_grad():
        expected = F.cross_entropy(model(X), y).item(), cl.accuracy(model(X), y)
    for batch_size in (7, 45, 4096):
        got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=batch_size)
        assert got == pytest.approx({"loss": expected[0], "accuracy": expected[1]}, rel=1e-5)
    assert cl.evaluate(model, X, y) == pytest.approx({"accuracy": expected[1]})
    penalty = {"p": lambda m, x: x.abs().mean()}  # a per-batch mean: weighted by batch size
    got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=7, penalties=penalty)
    assert got["p"] == pytest.approx(X.abs().mean().item(), rel=1e-5)
    assert got["loss"] == pytest.approx(expected[0] + X.abs().mean().item(), rel=1e-5)
    assert got["data_loss"] == pytest.approx(expected[0], rel=1e-5)


# ---- fit and evaluate: train and eval modes (dropout, batch norm) ---------------------------


def _noisy_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(16, 3))


def test_fit_trains_in_train_mode_and_validates_in_eval_mode():
    X, y = _three_classes(96)
    model = _noisy_model()
    model.eval()
    h = _frozen_fit(model, X, y, loss_fn=F.cross_entropy, num_epochs=1, batch_size=32,
                    validation=(X, y))
    assert model.training  # fit leaves the model in train mode
    model.eval()
    with torch.no_grad():
        eval_loss = F.cross_entropy(model(X), y).item()
    # validation: eval mode (no dropout, running statistics), on the same data and model
    assert h["val_loss"][0] == pytest.approx(eval_loss, rel=1e-5)
    # training: dropout active and batch statistics: a different (here larger) loss
    assert h["loss"][0] > eval_loss + 0.05


def test_evaluate_runs_in_eval_mode_leaves_running_stats_alone_and_restores_the_mode():
    X, y = _three_classes(64)
    model = _noisy_model()
    model.train()
    model(X)  # running statistics away from their initial values
    bn = model[1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    got = cl.evaluate(model, X, y, loss_fn=F.cross_entropy, batch_size=10)
    assert model.training
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(X), y).item()
    assert got["loss"] == pytest.approx(expected, rel=1e-5)
    again = cl.evaluate(model, X, y, loss_fn=F.cross_entropy)
    assert not model.training and again["loss"] == pytest.approx(expected, rel=1e-5)


def test_the_scheduler_steps_once_per_epoch_whatever_the_number_of_batches():
    X, y = _three_classes(50)
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=3,
           batch_size=4, scheduler=scheduler)
    assert scheduler.last_epoch == 3 and optimizer.param_groups[0]["lr"] == 0.125


def test_train_gives_the_run_its_seed_optimizer_schedule_and_validation():
    data = cl.make_moons(200)
    run = cl.Run(lambda: nn.Linear(2, 2), lr=0.5, num_epochs=3, batch_size=16, optimizer="sgd",
                 momentum=0.9, schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, 0.1))
    result = cl.train(run, data, seed=3)
    assert result.run.seed == 3 and result.history.num_epochs == 3
    assert "val_accuracy" in result.history
    with torch.no_grad():
        val = cl.accuracy(result.model(data.X_val), data.y_val)
    assert result.history.last("val_accuracy") == pytest.approx(val)
    same = cl.train(run.replace(seed=3), data)
    assert torch.equal(same.model.weight, result.model.weight)
    other = cl.train(run, data, seed=4)
    assert not torch.equal(other.model.weight, result.model.weight)
    optimizer = cl.make_optimizer(run, nn.Linear(2, 2))
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["lr"] == 0.5


def test_summaries_of_seeds():
    assert cl.mean_std([0.5]) == (0.5, 0.0)
    mean, std = cl.mean_std([0.2, 0.4, 0.9])
    assert mean == pytest.approx(0.5) and std == pytest.approx(math.sqrt(0.13))
    assert cl.format_mean_std([0.2, 0.4, 0.9]) == "50.0 ± 36.1%"
    assert cl.format_mean_std([0.5, float("nan")]) == "diverged (1 of 2 seeds)"
    assert cl.format_score(0.4567) == "45.7%" and cl.format_score(0.4567, digits=2) == "45.67%"


# ---- the second run of `make mutate`: training, data, layers, autoencoders ---------------------


def _counting_sgd(steps: list, made: list):
    """An optimizer factory for `Run(optimizer=...)` that counts the steps it takes."""
    def make(params, lr):
        optimizer = torch.optim.SGD(params, lr=lr)
        optimizer.register_step_post_hook(lambda *_: steps.append(1))
        made.append(optimizer)
        return optimizer
    return make


def test_train_takes_the_runs_own_optimizer_batch_size_and_schedule():
    data = cl.make_moons(200)  # 120 training examples
    assert len(data.X_train) == 120
    steps, made = [], []
    halve = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa: E731
    run = cl.Run(lambda: nn.Linear(2, 2), lr=0.4, num_epochs=2, batch_size=50,
                 optimizer=_counting_sgd(steps, made), schedule=halve)
    cl.train(run, data)
    assert len(steps) == 2 * 3  # batches of 50, 50 and 20 in each epoch
    assert made[0].param_groups[0]["lr"] == pytest.approx(0.4 * 0.5**2)


def test_fit_takes_batches_of_64_unless_told_otherwise():
    X, y = _three_classes(130)  # 64 + 64 + 2
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=1)
    assert len(steps) == 3


def test_train_without_validation_rows_logs_no_validation():
    data = cl.make_moons(200)
    empty = cl.Split(data.X_train, data.y_train, data.X_val[:0], data.y_val[:0], data.X_test,
                     data.y_test)
    result = cl.train(cl.Run(lambda: nn.Linear(2, 2), num_epochs=1), empty)
    assert "loss" in result.history and "val_loss" not in result.history


def test_train_seeds_wants_a_list_of_seeds():
    run = cl.Run(lambda: nn.Linear(2, 2), num_epochs=1)
    for bad in (3, []):
        with pytest.raises((TypeError, ValueError), match="seeds"):
            cl.train_seeds(run, cl.make_moons(100), bad)


def test_a_parameter_without_a_gradient_in_a_batch_is_not_moved_by_that_step():
    class Gate(nn.Module):  # `extra` takes part only in full batches
        def __init__(self):
            super().__init__()
            self.linear, self.extra = nn.Linear(5, 3), nn.Parameter(torch.zeros(3))

        def forward(self, x):
            out = self.linear(x)
            return out + self.extra if len(x) == 10 else out

    torch.manual_seed(0)
    X, y = _three_classes(23)  # batches of 10, 10 and 3
    model = Gate()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    values = []
    optimizer.register_step_post_hook(lambda *_: values.append(model.extra.detach().clone()))
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=optimizer, num_epochs=1,
           batch_size=10)
    assert not torch.equal(values[0], values[1])  # moved by the full batches
    assert torch.equal(values[1], values[2])  # left alone by the batch it took no part in


def test_metrics_of_an_autoencoder_and_of_a_vae_see_the_outputs_and_the_inputs():
    torch.manual_seed(0)
    X = torch.rand(40, 6)
    seen = []

    def error(output, target):
        x_hat = output[0] if isinstance(output, tuple) else output
        seen.append(target)
        return float(((x_hat - target) ** 2).mean())

    for model, loss_fn in [
        (cl.fully_connected_autoencoder([6, 2]), cl.reconstruction_loss),
        (cl.fully_connected_vae([6, 2]), cl.elbo_loss),
    ]:
        seen.clear()
        h = _frozen_fit(model, X, None, loss_fn=loss_fn, num_epochs=1, batch_size=16,
                        metrics={"error": error})
        assert "error" in h and torch.equal(torch.sort(seen[0], dim=0).values,
                                            torch.sort(X, dim=0).values)
