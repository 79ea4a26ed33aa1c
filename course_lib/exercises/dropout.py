"""Exercises of chapter 6, Dropout (`exercises/06_dropout.ipynb`).

Every exercise takes the dropout mask as an argument (True or 1 = the unit is kept), so that a
correct answer is deterministic: the random draw is not part of what is graded.
"""
from __future__ import annotations

import torch

from course_lib.grading import Case, Exercise, Mutant, call, call_with_grad, register


def _mask_cases(seed: int, with_training: bool) -> list[Case]:
    """(x, mask, p[, training]) cases: random inputs and masks of several shapes, and p = 0."""
    g = torch.Generator().manual_seed(seed)
    modes = (True, False) if with_training else (True,)
    cases = []
    x = torch.tensor([[1.0, -2.0, 3.0, 4.0]])
    mask = torch.tensor([[True, False, True, True]])
    for training in modes:
        extra = (training,) if with_training else ()
        tail = f", training={training}" if with_training else ""
        cases.append(
            Case(
                (x, mask, 0.25, *extra),
                label=f"x = [[1., -2., 3., 4.]], mask = [[True, False, True, True]], p = "
                      f"0.25{tail}",
            )
        )
        for shape, p in [((8, 5), 0.5), ((3, 10), 0.2), ((4, 2, 3), 0.8)]:
            xr = torch.randn(shape, generator=g)
            m = torch.rand(shape, generator=g) >= p
            cases.append(
                Case((xr, m, p, *extra), label=f"random x and mask of shape {shape}, p = {p}{tail}")
            )
        cases.append(
            Case(
                (torch.randn(4, 3, generator=g), torch.ones(4, 3, dtype=torch.bool), 0.0, *extra),
                label=f"x of shape (4, 3), mask all True, p = 0{tail}",
            )
        )
    return cases


# ---- dropout.dropout_train: inverted dropout in training mode -----------------------------------

def dropout_train(
    x: torch.Tensor, mask: torch.Tensor, p: float
) -> torch.Tensor:
    """Inverted dropout in training mode, p < 1: keep x where mask is True,
    scaled by 1 / (1 - p).
    """
    # E[mask / (1 - p)] = 1: the expectation is preserved
    return x * mask / (1 - p)


def _train_no_scale(x, mask, p):
    return x * mask


def _train_scale_by_keep(x, mask, p):
    return x * mask * (1 - p)


def _train_divide_by_p(x, mask, p):
    return x * mask / p if p > 0 else x * mask


def _train_inverted_mask(x, mask, p):
    return x * ~mask / (1 - p)


register(
    Exercise(
        id="dropout.dropout_train",
        reference=dropout_train,
        cases=lambda: _mask_cases(61, with_training=False),
        run=call_with_grad,
        mutants=[
            Mutant(
                _train_no_scale,
                "Missing 1/(1-p): inverted dropout scales the kept units up by 1/(1-p) during "
                "training, so "
                "that the expected output equals x and nothing needs changing at test time.",
            ),
            Mutant(
                _train_scale_by_keep,
                "Scale *up* by 1/(1-p), not down by (1-p): multiplying by the keep probability is "
                "what the "
                "original (non-inverted) dropout does to the weights at test time.",
            ),
            Mutant(
                _train_divide_by_p,
                "Divide by the keep probability 1 - p, not by the drop probability p.",
            ),
            Mutant(
                _train_inverted_mask,
                "mask is True for the units that are KEPT: multiply by mask, not by ~mask.",
            ),
        ],
    )
)


# ---- dropout.dropout: training and eval mode -----------------------------------------------------

def dropout(
    x: torch.Tensor, mask: torch.Tensor, p: float, training: bool
) -> torch.Tensor:
    """Inverted dropout: the masked, rescaled x in training mode; x itself in
    eval mode.
    """
    if not training:
        return x  # test time: the whole network, already scaled during training
    return dropout_train(x, mask, p)


def _eval_left_on(x, mask, p, training):
    return dropout_train(x, mask, p)


def _eval_scaled_twice(x, mask, p, training):
    return dropout_train(x, mask, p) if training else x * (1 - p)


def _eval_unscaled_training(x, mask, p, training):
    return x * mask if training else x


def _eval_swapped(x, mask, p, training):
    return x if training else dropout_train(x, mask, p)


register(
    Exercise(
        id="dropout.dropout",
        reference=dropout,
        cases=lambda: _mask_cases(62, with_training=True),
        run=call_with_grad,
        mutants=[
            Mutant(
                _eval_left_on,
                "Dropout left on in eval mode: at test time (training=False) return x unchanged, "
                "as "
                "model.eval() makes nn.Dropout do.",
            ),
            Mutant(
                _eval_scaled_twice,
                "Scaling at test time twice: with inverted dropout the 1/(1-p) scaling already "
                "happened in "
                "training, so eval mode is the identity; multiplying by (1 - p) is the rule of the "
                "*non-inverted* version only.",
            ),
            Mutant(
                _eval_unscaled_training, "Missing 1/(1-p) in training mode: x * mask / (1 - p)."
            ),
            Mutant(
                _eval_swapped, "training=True is when units are dropped; training=False returns x."
            ),
        ],
    )
)


# ---- dropout.dropout_classic: the original, non-inverted dropout ---------------------------------

def dropout_classic(
    x: torch.Tensor, mask: torch.Tensor, p: float, training: bool
) -> torch.Tensor:
    """Dropout as first published: mask without scaling in training, scale by (1
    - p) in eval.
    """
    if training:
        return x * mask  # no rescaling during training
    # test time: every unit present, scaled by its keep probability
    return x * (1 - p)


def _classic_inverted(x, mask, p, training):
    return dropout(x, mask, p, training)


def _classic_eval_identity(x, mask, p, training):
    return x * mask if training else x


def _classic_eval_divide(x, mask, p, training):
    return x * mask if training else x / (1 - p)


def _classic_eval_p(x, mask, p, training):
    return x * mask if training else x * p


register(
    Exercise(
        id="dropout.dropout_classic",
        reference=dropout_classic,
        cases=lambda: _mask_cases(63, with_training=True),
        run=call_with_grad,
        mutants=[
            Mutant(
                _classic_inverted,
                "That is inverted dropout. In the original version training does not rescale (x * "
                "mask) "
                "and test time multiplies by the keep probability 1 - p.",
            ),
            Mutant(
                _classic_eval_identity,
                "Without rescaling in training, the test-time network must be scaled by the keep "
                "probability: x * (1 - p). Otherwise its outputs are 1/(1-p) times too large on "
                "average.",
            ),
            Mutant(
                _classic_eval_divide,
                "At test time multiply by the keep probability (1 - p), don't divide.",
            ),
            Mutant(
                _classic_eval_p,
                "Scale by the KEEP probability 1 - p, not by the drop probability p.",
            ),
        ],
    )
)


# ---- dropout.mc_average: Monte Carlo dropout -----------------------------------------------------

class _TinyNet:
    """A fixed two-layer ReLU network with dropout on its hidden layer: logits_fn(x, mask)."""

    def __init__(self, seed: int, num_in: int, width: int, num_classes: int, p: float) -> None:
        g = torch.Generator().manual_seed(seed)
        self.W1 = torch.randn(width, num_in, generator=g)
        self.W2 = torch.randn(num_classes, width, generator=g) / width**0.5
        self.p, self.__name__ = p, f"logits_fn (a ReLU network, {width} hidden units, p = {p})"

    def __call__(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(x @ self.W1.T)  # (N, width)
        return (hidden * mask / (1 - self.p)) @ self.W2.T  # (N, classes)


def mc_average(
    logits_fn, x: torch.Tensor, masks: list[torch.Tensor]
) -> torch.Tensor:
    """Average over the masks of the softmax probabilities of logits_fn(x,
    mask): (N, classes).
    """
    probs = [torch.softmax(logits_fn(x, mask), dim=1) for mask in masks]
    return torch.stack(probs).mean(dim=0)


def _mc_cases() -> list[Case]:
    cases = []
    for seed, (n, d, width, k, p, t) in enumerate(
        [(4, 3, 6, 3, 0.5, 5), (7, 5, 10, 4, 0.3, 20), (2, 2, 4, 2, 0.2, 1), (5, 4, 8, 5, 0.5, 3)]
    ):
        g = torch.Generator().manual_seed(70 + seed)
        net = _TinyNet(70 + seed, d, width, k, p)
        x = torch.randn(n, d, generator=g)
        masks = [torch.rand(n, width, generator=g) >= p for _ in range(t)]
        cases.append(
            Case(
                (net, x, masks),
                label=f"x of shape ({n}, {d}), {t} masks of shape ({n}, {width}), "
                f"{k} classes, p = {p}",
            )
        )
    return cases


def _mc_average_logits(logits_fn, x, masks):
    return torch.softmax(torch.stack([logits_fn(x, m) for m in masks]).mean(dim=0), dim=1)


def _mc_one_mask(logits_fn, x, masks):
    return torch.softmax(logits_fn(x, masks[0]), dim=1)


def _mc_log_probs(logits_fn, x, masks):
    return torch.stack([torch.log_softmax(logits_fn(x, m), dim=1) for m in masks]).mean(dim=0).exp()


def _mc_softmax_wrong_dim(logits_fn, x, masks):
    return torch.stack([torch.softmax(logits_fn(x, m), dim=0) for m in masks]).mean(dim=0)


def _mc_sum(logits_fn, x, masks):
    return torch.stack([torch.softmax(logits_fn(x, m), dim=1) for m in masks]).sum(dim=0)


register(
    Exercise(
        id="dropout.mc_average",
        reference=mc_average,
        cases=_mc_cases,
        run=call,
        mutants=[
            Mutant(
                _mc_average_logits,
                "Average the probabilities, not the logits: apply softmax to each mask's logits, "
                "then take "
                "the mean. (The mean of the logits gives another, sharper prediction.)",
            ),
            Mutant(
                _mc_one_mask,
                "Use every mask in `masks`, not only the first, and average the results.",
            ),
            Mutant(
                _mc_log_probs,
                "Average the probabilities themselves; the exponential of the mean log-probability "
                "is a "
                "geometric mean, which does not even sum to 1.",
            ),
            Mutant(
                _mc_softmax_wrong_dim, "Softmax over the classes, dim=1: each row must sum to 1."
            ),
            Mutant(_mc_sum, "Take the mean over the masks, not the sum: each row must sum to 1."),
        ],
    )
)
