"""Tests of course_lib.words (co-occurrence, PPMI, SVD vectors, similarity evaluation) and of
the text loaders of course_lib.data, against hand-worked examples and closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from course_lib import data
from course_lib.words import (
    Vocabulary,
    build_vocabulary,
    cooccurrence_counts,
    cosine_neighbours,
    evaluate_word_similarity,
    ppmi,
    svd_vectors,
)


def test_vocabulary_orders_by_count_then_alphabet_and_applies_limits():
    sentences = [["b", "a", "c", "a"], ["b", "d"]]
    vocab = build_vocabulary(sentences, min_count=1)
    assert vocab.words == ("a", "b", "c", "d") and vocab.counts == (2, 2, 1, 1)
    assert build_vocabulary(sentences, min_count=2).words == ("a", "b")
    assert build_vocabulary(sentences, min_count=1, max_size=3).words == ("a", "b", "c")
    assert "c" in vocab and "z" not in vocab and vocab.index["d"] == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_vocabulary_rejects_bad_min_count(bad):
    with pytest.raises(ValueError, match="min_count"):
        build_vocabulary([["a", "b"]], min_count=bad)


def test_vocabulary_rejects_a_string_instead_of_token_lists():
    with pytest.raises(TypeError, match="token lists"):
        build_vocabulary("the cat sat")
    with pytest.raises(TypeError, match="not a string"):
        build_vocabulary(["the cat", "a dog"])
    with pytest.raises(ValueError, match="no word"):
        build_vocabulary([["a"]], min_count=2)


def test_cooccurrence_hand_worked_window_one():
    # "a b a c": neighbours at distance 1 are (a,b), (b,a), (a,c); counts are symmetric
    vocab = Vocabulary(("a", "b", "c"), (2, 1, 1))
    counts = cooccurrence_counts([["a", "b", "a", "c"]], vocab, window=1).toarray()
    np.testing.assert_array_equal(counts, [[0, 2, 1], [2, 0, 0], [1, 0, 0]])


def test_cooccurrence_window_unknown_words_and_sentence_boundaries():
    vocab = Vocabulary(("a", "b"), (2, 2))
    # window 2: "a x b" pairs a with b across the unknown x (which keeps its position)
    counts = cooccurrence_counts([["a", "x", "b"], ["b", "a"]], vocab, window=2).toarray()
    np.testing.assert_array_equal(counts, [[0, 2], [2, 0]])
    # window 1: the unknown word separates a from b; no pair crosses sentences
    counts = cooccurrence_counts([["a", "x", "b"], ["b"], ["a"]], vocab, window=1).toarray()
    np.testing.assert_array_equal(counts, [[0, 0], [0, 0]])
    # repeated word at distance 2: a counted with itself in both directions
    counts = cooccurrence_counts([["a", "x", "a"]], vocab, window=2).toarray()
    np.testing.assert_array_equal(counts, [[2, 0], [0, 0]])


def test_cooccurrence_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    words = list("abcdefg")
    sentences = [[words[i] for i in rng.integers(0, 7, rng.integers(1, 12))] for _ in range(30)]
    vocab = build_vocabulary(sentences, min_count=1, max_size=5)
    expected = np.zeros((5, 5))
    for s in sentences:
        for p, u in enumerate(s):
            for q, v in enumerate(s):
                if p != q and abs(p - q) <= 3 and u in vocab and v in vocab:
                    expected[vocab.index[u], vocab.index[v]] += 1
    np.testing.assert_array_equal(
        cooccurrence_counts(sentences, vocab, window=3).toarray(), expected
    )


def test_cooccurrence_rejects_bad_arguments():
    vocab = Vocabulary(("a",), (1,))
    with pytest.raises(ValueError, match="window"):
        cooccurrence_counts([["a"]], vocab, window=0)
    with pytest.raises(TypeError, match="Vocabulary"):
        cooccurrence_counts([["a"]], ["a"])


def test_ppmi_hand_worked_example():
    # total 4; P(w) = (1/2, 1/2); P(c) = (3/4, 1/4)
    # PMI(0,0) = log((2/4) / (1/2 * 3/4)) = log(4/3); PMI(1,0) = log(2/3) < 0 -> 0
    # PMI(1,1) = log((1/4) / (1/2 * 1/4)) = log 2; the zero count (0,1) gives 0, not -inf
    counts = np.array([[2.0, 0.0], [1.0, 1.0]])
    expected = np.array([[math.log(4 / 3), 0.0], [0.0, math.log(2)]])
    np.testing.assert_allclose(ppmi(counts), expected, rtol=1e-12, atol=1e-12)
    result = ppmi(sp.csr_matrix(counts))
    assert sp.issparse(result)
    np.testing.assert_allclose(result.toarray(), expected, rtol=1e-12, atol=1e-12)


def test_ppmi_context_smoothing_closed_form():
    counts = np.array([[2.0, 0.0], [1.0, 1.0]])
    # context counts (3, 1) raised to 0.75, normalized
    p_c = np.array([3**0.75, 1.0]) / (3**0.75 + 1)
    expected = np.maximum(0, np.log(np.array([[2 / 4, 1e-300], [1 / 4, 1 / 4]])
                                    / (0.5 * p_c[None, :])))
    expected[0, 1] = 0.0
    np.testing.assert_allclose(ppmi(counts, smoothing=0.75), expected, rtol=1e-12, atol=1e-12)


def test_ppmi_matches_dense_formula_on_random_counts():
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.7, size=(6, 9)).astype(float)
    joint = counts / counts.sum()
    with np.errstate(divide="ignore"):
        pmi = (
            np.log(joint)
            - np.log(joint.sum(1, keepdims=True))
            - np.log(joint.sum(0, keepdims=True))
        )
    np.testing.assert_allclose(ppmi(counts), np.maximum(pmi, 0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("counts, match", [
    (np.zeros((2, 2)), "all zero"), (-np.ones((2, 2)), "non-negative"), (np.ones(3), "2-D"),
])
def test_ppmi_rejects_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        ppmi(counts)


def test_ppmi_rejects_bad_smoothing():
    with pytest.raises(ValueError, match="smoothing"):
        ppmi(np.ones((2, 2)), smoothing=0)


def test_svd_vectors_reconstruct_and_weight_by_singular_values():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((20, 12))
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    v1 = svd_vectors(A, 4, power=1.0)
    v0 = svd_vectors(A, 4, power=0.0)
    np.testing.assert_allclose(np.abs(v1), np.abs(u[:, :4] * s[:4]), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.abs(v0), np.abs(u[:, :4]), rtol=1e-6, atol=1e-8)
    # power 1: U_k S_k V_k^T is the best rank-4 approximation, whatever the signs
    best = (u[:, :4] * s[:4]) @ vt[:4]
    projection = v1 @ np.linalg.lstsq(v1, A, rcond=None)[0]
    np.testing.assert_allclose(projection, best, atol=1e-8)
    with pytest.raises(ValueError, match="dim"):
        svd_vectors(A, 12)


def test_cosine_neighbours_and_similarity_evaluation():
    vocab = Vocabulary(("cat", "dog", "car", "bus"), (4, 3, 2, 1))
    vectors = np.array([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.2, 0.9]])
    neighbours = cosine_neighbours(vectors, vocab, "cat", k=2)
    assert [w for w, _ in neighbours] == ["dog", "bus"]
    assert neighbours[0][1] == pytest.approx(
        (0.9 + 0.02) / (math.hypot(1, 0.1) * math.hypot(0.9, 0.2)), rel=1e-12)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        cosine_neighbours(vectors, vocab, "cow")
    pairs = [("cat", "dog", 9.0), ("car", "bus", 8.0), ("cat", "car", 1.0), ("dog", "bus", 2.0),
             ("cat", "bus", 1.5), ("cat", "cow", 5.0)]
    result = evaluate_word_similarity(vectors, vocab, pairs, num_bootstrap=200)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    model = [unit[vocab.index[a]] @ unit[vocab.index[b]] for a, b, _ in pairs[:5]]
    assert result.spearman == pytest.approx(spearmanr(model, [p[2] for p in pairs[:5]]).statistic)
    assert (result.num_pairs, result.num_total) == (5, 6) and result.coverage == pytest.approx(
        5 / 6
    )
    assert result.ci_low <= result.spearman <= result.ci_high
    assert "5/6 pairs" in str(result)


def test_similarity_interval_shrinks_with_more_pairs_and_is_reproducible():
    rng = np.random.default_rng(3)
    words = tuple(f"w{i}" for i in range(400))
    vocab = Vocabulary(words, tuple(range(400, 0, -1)))
    vectors = rng.standard_normal((400, 8))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    def pairs(n):
        idx = rng.integers(0, 400, (n, 2))
        return [(words[i], words[j], float(unit[i] @ unit[j] + 0.3 * rng.standard_normal()))
                for i, j in idx]
    small, large = pairs(30), pairs(600)
    a = evaluate_word_similarity(vectors, vocab, small)
    b = evaluate_word_similarity(vectors, vocab, large)
    assert b.ci_high - b.ci_low < a.ci_high - a.ci_low
    assert b.ci_low > 0.5
    assert evaluate_word_similarity(vectors, vocab, small) == a  # same seed, same interval


def test_sparse_rows_score_as_their_dense_copy():
    rng = np.random.default_rng(5)
    words = tuple(f"w{i}" for i in range(50))
    vocab = Vocabulary(words, tuple(range(50, 0, -1)))
    dense = rng.exponential(1.0, (50, 40)) * (rng.random((50, 40)) < 0.3)  # mostly zeros
    dense[7] = 0.0
    pairs = [(words[i], words[j], float(rng.uniform(0, 10)))
             for i, j in rng.integers(0, 50, (60, 2))]
    expected = evaluate_word_similarity(dense, vocab, pairs)
    got = evaluate_word_similarity(sp.csr_matrix(dense), vocab, pairs)
    assert got.spearman == pytest.approx(expected.spearman, abs=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx((expected.ci_low, expected.ci_high),
                                                      abs=1e-12)
    with pytest.raises(ValueError, match="one row per vocabulary word"):
        evaluate_word_similarity(sp.csr_matrix(dense[:10]), vocab, pairs)


def test_bootstrap_rank_correlation_matches_scipy_with_ties():
    from course_lib.words import _rank_correlation_rows

    rng = np.random.default_rng(4)
    a = rng.integers(0, 5, (20, 15)).astype(float)  # many ties
    b = rng.standard_normal((20, 15))
    expected = [spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(_rank_correlation_rows(a, b), expected, rtol=1e-10)


def test_similarity_evaluation_rejects_mismatched_vectors_and_no_coverage():
    vocab = Vocabulary(("a", "b", "c"), (3, 2, 1))
    with pytest.raises(ValueError, match="one row per vocabulary word"):
        evaluate_word_similarity(np.ones((2, 4)), vocab, [("a", "b", 1.0)])
    with pytest.raises(ValueError, match="at least 3"):
        evaluate_word_similarity(np.eye(3), vocab, [("a", "b", 1.0), ("a", "z", 2.0)])


# ---- loaders: the text and the benchmarks bundled with gensim --------------------------------

def test_lee_corpus_and_wordsim353_load_offline():
    corpus = data.load_text_corpus("lee")
    assert len(corpus) == 300
    assert 55_000 < sum(map(len, corpus)) < 65_000
    assert all(t == t.lower() and t.isascii() for s in corpus[:20] for t in s)
    pairs = data.load_word_similarity("wordsim353")
    assert len(pairs) == 353 and ("tiger", "cat", 7.35) in pairs
    assert len(data.load_word_similarity("simlex999")) == 999


def test_wiki_corpus_is_plain_text_without_markup():
    corpus = data.load_text_corpus("wiki")
    tokens = [t for s in corpus for t in s]
    assert 400_000 < len(tokens) < 500_000
    assert {"anarchism", "philosophy", "language", "the"} <= set(tokens)
    markup = {"ref", "nbsp", "http", "https", "quot", "defaultsort", "infobox"}
    assert not markup & set(tokens)  # references, entities, links and templates are gone
    corpus[0].append("changed")
    assert data.load_text_corpus("wiki")[0][-1] != "changed"  # callers get a fresh copy


def test_loaders_reject_unknown_names_and_say_when_gensim_is_missing(monkeypatch):
    with pytest.raises(ValueError, match="one of"):
        data.load_text_corpus("shakespeare")
    with pytest.raises(ValueError, match="one of"):
        data.load_word_similarity("men")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install gensim"):
        data.load_word_similarity("wordsim353")
