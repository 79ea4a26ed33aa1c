"""Words: dense word vectors from co-occurrence statistics, and their evaluation.

Chapter 12 (Autoencoders at work) introduces it. A word is described by the words around it
(the distributional hypothesis, Harris 1954): count how often each pair of words occurs within a
small window, reweight the counts by positive pointwise mutual information (PPMI), and compress
each word's row into a few dense numbers (truncated SVD or an autoencoder). The vectors are judged
by how well their cosine similarities rank word pairs the way people do (WordSim353), with a
bootstrap interval because a small corpus covers few pairs.

What it is not: a tokenizer for arbitrary text (the corpora come tokenized from
`course_lib.data.load_text_corpus`) or a trainer (autoencoders train through `course_lib.training`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata, spearmanr

from course_lib import checks

__all__ = [
    "Vocabulary", "WordSimilarity", "build_vocabulary", "cooccurrence_counts", "cosine_neighbours",
    "evaluate_word_similarity", "ppmi", "svd_vectors",
]


@dataclass(frozen=True)
class Vocabulary:
    """The kept words, most frequent first, with their corpus counts. Chapter 12."""

    words: tuple[str, ...]
    counts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def index(self) -> dict[str, int]:
        """word -> row number."""
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {w: i for i, w in enumerate(self.words)}
            object.__setattr__(self, "_index", cached)
        return cached

    def __repr__(self) -> str:
        head = ", ".join(self.words[:5])
        return f"Vocabulary({len(self)} words: {head}, ...)"


def _check_sentences(sentences: object) -> None:
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Sequence):
        raise TypeError(
            "sentences must be a list of token lists, e.g. [['the', 'cat'], ['a', 'dog']]"
        )
    if any(isinstance(s, str) or not isinstance(s, Sequence) for s in sentences):
        raise TypeError("each sentence must be a list of string tokens, not a string")


def build_vocabulary(
    sentences: Sequence[Sequence[str]], min_count: int = 5, max_size: int | None = None
) -> Vocabulary:
    """Words occurring at least `min_count` times, most frequent first (ties
    alphabetical). Chapter 12.

    `max_size` keeps only the most frequent ones.
    """
    _check_sentences(sentences)
    checks.integer("min_count", min_count, minimum=1)
    if max_size is not None:
        checks.integer("max_size", max_size, minimum=1, wanted="None or an integer >= 1")
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted(
        ((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0])
    )
    if max_size is not None:
        kept = kept[:max_size]
    if not kept:
        raise ValueError(f"no word occurs at least min_count={min_count} times")
    return Vocabulary(tuple(w for w, _ in kept), tuple(c for _, c in kept))


def cooccurrence_counts(
    sentences: Sequence[Sequence[str]], vocab: Vocabulary, window: int = 5
) -> sp.csr_matrix:
    """Symmetric (V, V) counts of word pairs at most `window` positions apart. Chapter 12.

    Words outside `vocab` are skipped but keep their positions (they still separate words), and
    windows do not cross sentence boundaries. Entry (i, j) counts the occurrences of word j within
    `window` tokens of an occurrence of word i.
    """
    _check_sentences(sentences)
    if not isinstance(vocab, Vocabulary):
        raise TypeError(
            f"vocab must be a Vocabulary (from build_vocabulary), got {type(vocab).__name__}"
        )
    checks.integer("window", window, minimum=1)
    index = vocab.index
    rows, cols = [], []
    for sentence in sentences:
        ids = np.fromiter((index.get(t, -1) for t in sentence), dtype=np.int64, count=len(sentence))
        for d in range(1, min(window, len(ids) - 1) + 1):
            a, b = ids[:-d], ids[d:]
            keep = (a >= 0) & (b >= 0)
            rows.append(a[keep])
            cols.append(b[keep])
    i = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    j = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    n = len(vocab)
    ones = np.ones(len(i), dtype=np.float64)
    forward = sp.coo_matrix((ones, (i, j)), shape=(n, n))
    return (forward + forward.T).tocsr()  # each pair counted in both directions


def ppmi(counts: np.ndarray | sp.spmatrix, smoothing: float = 1.0) -> np.ndarray | sp.csr_matrix:
    """Positive pointwise mutual information of a (words, contexts) count matrix. Chapter 12.

    PPMI(w, c) = max(0, log P(w, c) / (P(w) P(c))), with probabilities from the counts. Zero counts
    give 0 (their log would be minus infinity). `smoothing` raises the context counts to that power
    before normalizing them (0.75 in Levy, Goldberg and Dagan 2015), which lowers the PMI of rare
    contexts. Returns the same kind of matrix as given (dense array or sparse CSR).
    """
    checks.number("smoothing", smoothing, minimum=0, maximum=1, exclusive_minimum=True,
                  wanted="a number in (0, 1]")
    is_sparse = sp.issparse(counts)
    if not is_sparse:
        counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-D matrix (words, contexts), got shape {counts.shape}")
    C = sp.csr_matrix(counts, dtype=np.float64)
    if C.nnz and C.data.min() < 0:
        raise ValueError("counts must be non-negative")
    total = C.sum()
    if total == 0:
        raise ValueError("counts are all zero: there is nothing to estimate probabilities from")
    p_word = np.asarray(C.sum(axis=1)).ravel() / total  # (V,)
    context = np.asarray(C.sum(axis=0)).ravel() ** smoothing  # (C,)
    p_context = context / context.sum()
    C = C.tocoo()
    pmi = np.log(C.data / total) - np.log(p_word[C.row]) - np.log(p_context[C.col])
    keep = pmi > 0
    result = sp.csr_matrix((pmi[keep], (C.row[keep], C.col[keep])), shape=C.shape)
    return result if is_sparse else result.toarray()


def svd_vectors(matrix: np.ndarray | sp.spmatrix, dim: int, power: float = 0.5,
                seed: int = 0) -> np.ndarray:
    """Rows of U_d diag(s_d)^power from the truncated SVD of `matrix`: word vectors. Chapter 12.

    power=1 gives the best rank-`dim` reconstruction (U S); power 0.5 or 0 often rank word pairs
    better (Levy, Goldberg and Dagan 2015). Deterministic for a given `seed`.
    """
    from scipy.sparse.linalg import svds

    checks.integer("dim", dim, minimum=1, maximum=min(matrix.shape) - 1,
                   wanted=f"an integer in [1, {min(matrix.shape)})")
    A = sp.csr_matrix(matrix, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(min(A.shape))
    u, s, _ = svds(A, k=dim, v0=v0)
    order = np.argsort(-s)
    u, s = u[:, order], s[order]
    u = u * np.sign(u[np.abs(u).argmax(axis=0), range(dim)])  # fix each column's sign
    return u * s**power


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def cosine_neighbours(vectors: np.ndarray, vocab: Vocabulary, word: str, k: int = 5
                      ) -> list[tuple[str, float]]:
    """The `k` words whose vectors have the largest cosine similarity with `word`'s. Chapter 12."""
    vectors = _as_matrix(vectors, vocab)
    if word not in vocab:
        raise ValueError(f"{word!r} is not in the vocabulary ({len(vocab)} words)")
    unit = _normalized(vectors)
    sims = unit @ unit[vocab.index[word]]
    sims[vocab.index[word]] = -np.inf  # not the word itself
    best = np.argsort(-sims, kind="stable")[:k]
    return [(vocab.words[i], float(sims[i])) for i in best]


def _as_matrix(vectors: object, vocab: Vocabulary) -> np.ndarray:
    if hasattr(vectors, "detach"):  # a torch tensor
        vectors = vectors.detach().cpu().numpy()
    vectors = np.asarray(vectors, dtype=np.float64)
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    if vectors.ndim != 2 or len(vectors) != len(vocab):
        raise ValueError(
            f"vectors must have shape ({len(vocab)}, dim), one row per vocabulary word; "
            f"got {vectors.shape}"
        )
    return vectors


def _rank_correlation_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b (ties get average ranks)."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


@dataclass(frozen=True)
class WordSimilarity:
    """Spearman correlation between cosine similarities and human scores. Chapter 12.

    `ci_low`, `ci_high`: a bootstrap percentile interval (`confidence`) over the covered pairs.
    """

    spearman: float
    ci_low: float
    ci_high: float
    num_pairs: int  # pairs whose two words are both in the vocabulary
    num_total: int  # pairs in the benchmark
    confidence: float = 0.95

    @property
    def coverage(self) -> float:
        return self.num_pairs / self.num_total

    def __str__(self) -> str:
        return (f"Spearman {self.spearman:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}] "
                f"on {self.num_pairs}/{self.num_total} pairs")


def evaluate_word_similarity(
    vectors: np.ndarray, vocab: Vocabulary, pairs: Iterable[tuple[str, str, float]],
    num_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> WordSimilarity:
    """Spearman rank correlation of cosine similarity with human scores, on covered
    pairs. Chapter 12.

    `pairs` are (word1, word2, human score); pairs with a word outside `vocab` are skipped and
    counted. The interval resamples the covered pairs with replacement `num_bootstrap` times.
    `vectors` may be a scipy sparse matrix (raw count or PPMI rows, too large to densify).
    """
    sparse = sp.issparse(vectors)
    if sparse:
        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
        if vectors.ndim != 2 or vectors.shape[0] != len(vocab):
            raise ValueError(
                f"vectors must have shape ({len(vocab)}, dim), one row per vocabulary word; "
                f"got {vectors.shape}"
            )
        rows = sp.csr_matrix(vectors, dtype=np.float64)
    else:
        rows = _as_matrix(vectors, vocab)
    pairs = list(pairs)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    covered = [
        (vocab.index[a], vocab.index[b], s) for a, b, s in pairs if a in vocab and b in vocab
    ]
    if len(covered) < 3:
        raise ValueError(f"only {len(covered)} of {len(pairs)} pairs have both words in the "
                         "vocabulary; a correlation needs at least 3")
    i, j, human = (np.array(col) for col in zip(*covered))
    if sparse:
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
        unit = sp.diags(1 / np.where(norms == 0, 1, norms)) @ rows
        model = np.asarray(unit[i].multiply(unit[j]).sum(axis=1)).ravel()
    else:
        unit = _normalized(rows)
        model = np.sum(unit[i] * unit[j], axis=1)
    rho = float(spearmanr(model, human).statistic)
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(covered), (num_bootstrap, len(covered)))  # resampled pair indices
    boot = _rank_correlation_rows(model[k], human[k])
    boot = boot[np.isfinite(boot)]  # a resample with constant scores has no rank correlation
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return WordSimilarity(rho, float(low), float(high), len(covered), len(pairs), confidence)
