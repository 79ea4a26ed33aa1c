"""Exercises of chapter 12, Autoencoders at work (`exercises/12_autoencoders_at_work.ipynb`)."""
from __future__ import annotations

import torch

from course_lib.grading import Case, Exercise, Mutant, register


# ---- at_work.auroc ------------------------------------------------------------------------------

def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """P(score of a random positive > score of a random negative), ties counting
    1/2.
    """
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).double()
    ties = (pos[:, None] == neg[None, :]).double()
    return float((greater + 0.5 * ties).mean())


def _auroc_swapped(scores, labels):
    pos, neg = scores[labels == 0], scores[labels == 1]
    return float(((pos[:, None] > neg[None, :]).double()
                  + 0.5 * (pos[:, None] == neg[None, :]).double()).mean())


def _auroc_strict(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None, :]).double().mean())


def _auroc_ties_win(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] >= neg[None, :]).double().mean())


def _auroc_cases() -> list[Case]:
    g = torch.Generator().manual_seed(121)
    cases = [
        Case((torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])),
             label="scores [0.1, 0.4, 0.35, 0.8], labels [0, 0, 1, 1] (AUROC 0.75)"),
        Case((torch.tensor([1.0, 1.0, 2.0, 2.0]), torch.tensor([0, 1, 0, 1])),
             label="scores [1., 1., 2., 2.], labels [0, 1, 0, 1]: ties between classes"),
        Case((torch.tensor([3.0, 1.0, 2.0]), torch.tensor([1, 0, 0])),
             label="scores [3., 1., 2.], labels [1, 0, 0] (perfect: 1.0)"),
    ]
    for n in (20, 50):
        labels = (torch.rand(n, generator=g) < 0.4).long()
        labels[0], labels[1] = 0, 1
        scores = torch.randint(0, 6, (n,), generator=g).double() + labels  # many ties
        cases.append(Case((scores, labels), label=f"{n} integer scores with many ties"))
    return cases


register(Exercise(
    id="at_work.auroc",
    reference=auroc,
    cases=_auroc_cases,
    mutants=[
        Mutant(_auroc_swapped,
               "Positives and negatives swapped: the positives (label 1, the anomalies) should "
               "score HIGHER; you computed 1 - AUROC."),
        Mutant(_auroc_strict, "Ties: a tie between a positive and a negative counts 1/2, not 0 "
                              "(scikit-learn's roc_auc_score does the same)."),
        Mutant(_auroc_ties_win, "Ties: a tie between a positive and a negative counts 1/2, not 1."),
    ],
))


# ---- at_work.ppmi -------------------------------------------------------------------------------

def ppmi(counts: torch.Tensor) -> torch.Tensor:
    """max(0, log P(w, c) / (P(w) P(c))) of a (words, contexts) count matrix; 0
    where count is 0.
    """
    total = counts.sum()
    p_wc = counts / total
    p_w = p_wc.sum(dim=1, keepdim=True)  # (W, 1)
    p_c = p_wc.sum(dim=0, keepdim=True)  # (1, C)
    pmi = torch.log(p_wc / (p_w * p_c))
    # log 0 would be -inf
    pmi = torch.where(counts > 0, pmi, torch.zeros_like(pmi))
    return pmi.clamp(min=0)


def _ppmi_no_clip(counts):
    total = counts.sum()
    p_wc = counts / total
    pmi = torch.log(p_wc / (p_wc.sum(1, keepdim=True) * p_wc.sum(0, keepdim=True)))
    return torch.where(counts > 0, pmi, torch.zeros_like(pmi))


def _ppmi_log_zero(counts):
    total = counts.sum()
    p_wc = counts / total
    pmi = torch.log(p_wc / (p_wc.sum(1, keepdim=True) * p_wc.sum(0, keepdim=True)))
    return pmi.clamp(min=0)


def _ppmi_raw_counts(counts):
    pmi = torch.log(counts / (counts.sum(1, keepdim=True) * counts.sum(0, keepdim=True)))
    return torch.where(counts > 0, pmi, torch.zeros_like(pmi)).clamp(min=0)


def _ppmi_cases() -> list[Case]:
    g = torch.Generator().manual_seed(122)
    cases = [Case((torch.tensor([[2.0, 0.0], [1.0, 1.0]]),),
                  label="counts [[2., 0.], [1., 1.]] (PPMI [[log 4/3, 0], [0, log 2]])")]
    for w, c in [(4, 5), (6, 3), (10, 10)]:
        counts = torch.poisson(torch.full((w, c), 1.5), generator=g).double()
        counts[0, 0] = 0.0
        cases.append(Case((counts,), label=f"random counts of shape ({w}, {c}) with zeros"))
    counts = torch.poisson(torch.full((4, 4), 2.0), generator=g).double()
    counts[2] = 0.0
    cases.append(Case((counts,), label="counts of shape (4, 4) whose row 2 is all zeros "
                                       "(a word seen with no context)"))
    return cases


register(Exercise(
    id="at_work.ppmi",
    reference=ppmi,
    cases=_ppmi_cases,
    atol=1e-6,
    rtol=1e-6,
    mutants=[
        Mutant(_ppmi_no_clip, "Positive PMI: replace negative values by 0 (clamp(min=0))."),
        Mutant(_ppmi_log_zero,
               "Log of zero counts: log(0) is -inf, and 0 / 0 is NaN for a row or column of "
               "zeros; set PPMI to 0 wherever the count is 0: torch.where(counts > 0, pmi, 0)."),
        Mutant(_ppmi_raw_counts,
               "Use probabilities: divide the counts, and the row and column sums, by the total "
               "count before taking P(w, c) / (P(w) P(c))."),
    ],
))


# ---- at_work.nearest ----------------------------------------------------------------------------

def nearest(vectors: torch.Tensor, i: int, k: int) -> list[int]:
    """Rows of the k vectors with the largest cosine similarity to row i (not
    i), best first.
    """
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    sims = unit @ unit[i]
    sims[i] = -float("inf")
    return sims.topk(k).indices.tolist()


def _nearest_dot(vectors, i, k):
    sims = vectors @ vectors[i]
    sims[i] = -float("inf")
    return sims.topk(k).indices.tolist()


def _nearest_includes_self(vectors, i, k):
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    return (unit @ unit[i]).topk(k).indices.tolist()


def _nearest_smallest(vectors, i, k):
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    sims = unit @ unit[i]
    sims[i] = float("inf")
    return (-sims).topk(k).indices.tolist()


def _nearest_cases() -> list[Case]:
    g = torch.Generator().manual_seed(123)
    base = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.2]])
    cases = [
        Case(
            (base, 0, 2),
            label="vectors [[1, 0], [10, 1], [0, 1], [0.9, 0.1], [-1, 0.2]], "
            "i = 0, k = 2 (lengths differ: cosine ignores them)",
        )
    ]
    for n, d, k in [(20, 5, 3), (50, 8, 5)]:
        scale = torch.rand(n, 1, generator=g) * 10 + 0.1
        cases.append(
            Case(
                (torch.randn(n, d, generator=g) * scale, 3, k),
                label=f"{n} random vectors of dimension {d} and random lengths, i = 3, k = {k}",
            )
        )
    return cases


register(
    Exercise(
        id="at_work.nearest",
        reference=nearest,
        cases=_nearest_cases,
        mutants=[
            Mutant(
                _nearest_dot,
                "Cosine similarity divides the dot product by both lengths: long vectors must not "
                "win just for being long.",
            ),
            Mutant(
                _nearest_includes_self, "Leave out the word itself (its similarity to itself is 1)."
            ),
            Mutant(_nearest_smallest, "Nearest means the LARGEST cosine similarity, best first."),
        ],
    )
)


# ---- at_work.threshold_for_false_alarms ---------------------------------------------------------

def threshold_for_false_alarms(
    normal_scores: torch.Tensor, rate: float
) -> float:
    """The threshold that flags (score > threshold) a fraction `rate` of the
    normal scores.
    """
    return float(torch.quantile(normal_scores.double(), 1 - rate))


def _threshold_rate_quantile(normal_scores, rate):
    return float(torch.quantile(normal_scores.double(), rate))


def _threshold_max(normal_scores, rate):
    return float(normal_scores.max())


def _threshold_cases() -> list[Case]:
    g = torch.Generator().manual_seed(124)
    cases = [Case((torch.arange(1.0, 101.0), 0.05),
                  label="normal_scores 1, 2, ..., 100, rate = 0.05")]
    for n, rate in [(200, 0.01), (57, 0.1), (1000, 0.2)]:
        cases.append(Case((torch.randn(n, generator=g).exp(), rate),
                          label=f"{n} positive random scores, rate = {rate}"))
    return cases


def _threshold_percent(normal_scores, rate):
    return float(torch.quantile(normal_scores.double(), 1 - rate / 100))


register(Exercise(
    id="at_work.threshold_for_false_alarms",
    reference=threshold_for_false_alarms,
    cases=_threshold_cases,
    atol=1e-6,
    rtol=1e-6,
    mutants=[
        Mutant(_threshold_percent,
               "rate is a fraction (0.05 means 5%), not a percentage: take the (1 - rate) "
               "quantile, not the (1 - rate / 100) one."),
        Mutant(_threshold_rate_quantile,
               "Flagging a fraction `rate` of normal inputs means the threshold is the "
               "(1 - rate) quantile of their scores, e.g. the 95th percentile for 5%."),
        Mutant(_threshold_max,
               "The maximum flags no normal input at all (rate 0); use the (1 - rate) quantile."),
    ],
))
