"""Alternative correct answers to chapter 12's exercises (`course_lib.exercises.at_work`), written
differently from the references: the grader's parity test checks that `cl.check` and the grader
both pass them."""
import numpy as np
import torch


def auroc(scores, labels):
    # Mann-Whitney U from average ranks
    s = scores.double().numpy()
    y = labels.numpy()
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos, n_neg = (y == 1).sum(), (y == 0).sum()
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def threshold_for_false_alarms(normal_scores, rate):
    return float(np.quantile(normal_scores.double().numpy(), 1 - rate))


def ppmi(counts):
    total = counts.sum()
    rows = counts.sum(1, keepdim=True)
    cols = counts.sum(0, keepdim=True)
    safe = torch.where(counts > 0, counts, torch.ones_like(counts))
    expected = torch.where(counts > 0, rows * cols, torch.ones_like(counts))
    pmi = torch.log(safe * total / expected)
    return torch.relu(torch.where(counts > 0, pmi, torch.zeros_like(pmi)))


def nearest(vectors, i, k):
    sims = torch.nn.functional.cosine_similarity(vectors, vectors[i].unsqueeze(0), dim=1)
    order = torch.argsort(sims, descending=True, stable=True).tolist()
    return [j for j in order if j != i][:k]
