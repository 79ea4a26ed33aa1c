"""Data: the course's offline data sets as tensors with fixed-seed splits.

Nothing here touches the network. Digits come bundled with scikit-learn, MNIST-1D is generated
procedurally by the `mnist1d` package (Greydanus 2020), faces come bundled with scikit-image, and
the 2-D sets are synthetic. Introduced in chapter 1; used by every chapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from course_lib import checks

__all__ = [
    "Split", "load_digits", "load_faces", "load_mnist1d", "load_text_corpus",
    "load_word_similarity", "make_moons", "make_spirals",
]


@dataclass(frozen=True)
class Split:
    """Train / validation / test tensors. `X_*` are float32, `y_*` int64 class labels. Chapter 1."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        """Size of one example, flattened."""
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def num_classes(self) -> int:
        """Number of distinct labels across all splits."""
        return int(torch.cat([self.y_train, self.y_val, self.y_test]).max()) + 1

    def subset(self, num_train: int) -> Split:
        """The same split with only the first `num_train` training examples (validation and
        test unchanged): the small-data regime. Chapter 1."""
        checks.integer("num_train", num_train, minimum=1, maximum=len(self.X_train))
        return replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}={tuple(getattr(self, 'X_' + name).shape)}" for name in ("train", "val", "test")
        )
        return f"Split({shapes}, classes={self.num_classes})"


def _split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Stratified fixed-seed split into train / validation / test tensors."""
    # Imported here: scikit-learn costs 2 s at start-up, and MNIST-1D notebooks never need it.
    from sklearn.model_selection import train_test_split

    checks.fraction("val_fraction", val_fraction)
    checks.fraction("test_fraction", test_fraction)
    checks.non_negative_int("seed", seed)
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must leave some training data (< 1)")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    if val_fraction > 0:
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest,
            y_rest,
            test_size=val_fraction / (1 - test_fraction),
            random_state=seed,
            stratify=y_rest,
        )
    else:
        X_train, y_train = X_rest, y_rest
        X_val, y_val = X_rest[:0], y_rest[:0]
    return _as_split(X_train, y_train, X_val, y_val, X_test, y_test)


def _as_split(*arrays: np.ndarray) -> Split:
    tensors = [
        torch.as_tensor(np.asarray(a), dtype=torch.float32 if i % 2 == 0 else torch.int64)
        for i, a in enumerate(arrays)
    ]
    return Split(*tensors)


def load_digits(
    val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0, images: bool = False
) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images), as 64 features scaled to [0, 1].

    `images=True` keeps each digit as an 8 x 8 image, shape (N, 8, 8), for convolutional
    networks. Chapter 3.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    X = digits.images if images else digits.data  # (N, 8, 8) or (N, 64), the same pixels
    return _split(X / 16.0, digits.target, val_fraction, test_fraction, seed)


# MNIST-1D as the mnist1d package generates it with its default arguments and seed 42, stored
# because generating it takes 3 s (a Python loop over 5,000 signals) in every notebook that
# loads it. tests/test_library.py checks that it equals a fresh generation.
MNIST1D_FILE = Path(__file__).parent / "mnist1d_seed42.npz"


@lru_cache(maxsize=4)
def _mnist1d_arrays(shuffle_positions: bool, seed: int) -> tuple[np.ndarray, ...]:
    if not shuffle_positions and seed == 42:
        with np.load(MNIST1D_FILE, allow_pickle=False) as stored:
            return tuple(stored[key] for key in ("x", "y", "x_test", "y_test"))
    return _generate_mnist1d(shuffle_positions, seed)


def _generate_mnist1d(shuffle_positions: bool, seed: int) -> tuple[np.ndarray, ...]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.shuffle_seq = shuffle_positions
    state = np.random.get_state()  # make_dataset reseeds NumPy's global RNG: leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_mnist1d(num_val: int = 0, shuffle_positions: bool = False, seed: int = 42) -> Split:
    """MNIST-1D (Greydanus 2020): 4,000 training and 1,000 test signals of length 40, 10 classes.

    Generated procedurally (once per process and seed) with the package's default arguments, so
    the numbers are comparable with the paper's; the default seed's arrays ship with course_lib.
    `num_val` examples are taken from the end of the training set for validation.
    `shuffle_positions=True` applies one fixed permutation to the 40 positions of every signal
    (the paper's "shuffled" control: spatial structure destroyed).
    Chapter 1.
    """
    checks.integer("num_val", num_val, minimum=0, maximum=3999)
    checks.non_negative_int("seed", seed)
    x, y, x_test, y_test = _mnist1d_arrays(bool(shuffle_positions), seed)
    n_train = len(x) - num_val
    return _as_split(x[:n_train], y[:n_train], x[n_train:], y[n_train:], x_test, y_test)


def load_faces(val_fraction: float = 0.0, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """scikit-image's bundled LFW subset: 100 faces (label 1) and 100 non-faces (label 0), 25x25.

    Images are float32 in [0, 1] with shape (N, 25, 25). Chapter 9.
    """
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)
    labels = np.array([1] * 100 + [0] * 100)
    return _split(images, labels, val_fraction, test_fraction, seed)


def make_moons(num_examples: int = 1000, noise: float = 0.2, seed: int = 0) -> Split:
    """Two interleaving half circles in 2-D (scikit-learn), split 60/20/20. Chapter 1."""
    from sklearn.datasets import make_moons as sk_make_moons

    checks.integer("num_examples", num_examples, minimum=10)
    checks.non_negative_float("noise", noise)
    checks.non_negative_int("seed", seed)
    X, y = sk_make_moons(n_samples=num_examples, noise=noise, random_state=seed)
    return _split(X, y, 0.2, 0.2, seed)


def make_spirals(
    num_examples: int = 1000, num_classes: int = 2, noise: float = 0.1, seed: int = 0
) -> Split:
    """Interleaved 2-D spirals, one arm per class, split 60/20/20: not linearly separable.

    Chapter 1.
    """
    checks.integer("num_classes", num_classes, minimum=2)
    checks.integer(
        "num_examples",
        num_examples,
        minimum=10 * num_classes,
        wanted=f"an integer >= 10 * num_classes = {10 * num_classes}",
    )
    checks.non_negative_float("noise", noise)
    checks.non_negative_int("seed", seed)
    rng = np.random.default_rng(seed)
    per_class = num_examples // num_classes
    radius = np.linspace(0.05, 1.0, per_class)
    X, y = [], []
    for k in range(num_classes):
        angle = np.linspace(0, 3 * np.pi, per_class) + 2 * np.pi * k / num_classes
        angle = angle + rng.normal(scale=noise * 2, size=per_class)
        X.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        y.append(np.full(per_class, k))
    return _split(np.concatenate(X), np.concatenate(y), 0.2, 0.2, seed)


# ---- Text: real English and human word-similarity judgements (chapter 12) -------------------
# gensim's wheel bundles small corpora and benchmarks as test data; we read the files and never
# import gensim itself (slow to import, and not needed to read text).

_TEXT_CORPORA = {
    "lee": "lee_background.cor",
    "wiki": "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
}
_WORD_SIMILARITY = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def _gensim_test_data(filename: str) -> str:
    import importlib.util
    import os

    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the text corpora and word-similarity benchmarks come with the gensim package, which "
            "is not installed: run `pip install gensim` (or `pip install -e .` in the course "
            "repository)"
        )
    path = os.path.join(os.path.dirname(spec.origin), "test", "test_data", filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{filename} is missing from the installed gensim package ({path})")
    return path


def _tokens(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def _wiki_plain_text(markup: str) -> str:
    """Article text from MediaWiki markup: templates, tables, references and links removed."""
    import html
    import re

    text = html.unescape(html.unescape(markup))  # XML-escaped wiki entities: &amp;nbsp; -> ' '
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    previous = None
    while previous != text:  # templates nest: remove the innermost until none is left
        previous = text
        text = re.sub(r"\{\{[^{}]*\}\}", " ", text)
    text = re.sub(r"\{\|.*?\|\}", " ", text, flags=re.S)  # tables
    text = re.sub(r"\[\[(?:File|Image|Category|[a-z\-]+):[^\]]*\]\]", " ", text)
    text = re.sub(r"\[\[(?:[^\]|]*\|)?([^\]|]*)\]\]", r"\1", text)  # [[target|shown]] -> shown
    text = re.sub(r"\[https?://\S+\s*([^\]]*)\]", r"\1", text)
    return re.sub(r"https?://\S+", " ", text)


@lru_cache(maxsize=2)
def _text_corpus(name: str) -> tuple[tuple[str, ...], ...]:
    path = _gensim_test_data(_TEXT_CORPORA[name])
    if name == "lee":
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        import bz2
        import re

        with bz2.open(path, "rt", encoding="utf-8") as f:
            articles = re.findall(r"<text[^>]*>(.*?)</text>", f.read(), flags=re.S)
        lines = [line for article in articles for line in _wiki_plain_text(article).split("\n")]
    sentences = (_tokens(line) for line in lines)
    return tuple(tuple(s) for s in sentences if len(s) > 1)


def load_text_corpus(name: str = "lee") -> list[list[str]]:
    """Real English text as a list of token lists (lower-case words), offline. Chapter 12.

    `"lee"`: the Lee background corpus, 300 short Australian news articles (about 60,000 tokens),
    one list per article. `"wiki"`: a shortened English Wikipedia dump (206 articles, about 450,000
    tokens after removing the markup), one list per paragraph. Both ship with the gensim package as
    test data; nothing is downloaded.
    """
    if name not in _TEXT_CORPORA:
        raise ValueError(f"name must be one of {sorted(_TEXT_CORPORA)}, got {name!r}")
    return [list(s) for s in _text_corpus(name)]


def load_word_similarity(name: str = "wordsim353") -> list[tuple[str, str, float]]:
    """Word pairs with human similarity scores, as (word1, word2, score), offline. Chapter 12.

    `"wordsim353"`: 353 pairs rated 0-10 for relatedness (Finkelstein et al. 2002).
    `"simlex999"`: 999 pairs rated 0-10 for similarity proper (Hill, Reichart and Korhonen 2015).
    Words are lower-cased. Both ship with the gensim package as test data.
    """
    if name not in _WORD_SIMILARITY:
        raise ValueError(f"name must be one of {sorted(_WORD_SIMILARITY)}, got {name!r}")
    pairs = []
    with open(_gensim_test_data(_WORD_SIMILARITY[name]), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            a, b, score = line.rstrip("\n").split("\t")[:3]
            pairs.append((a.lower(), b.lower(), float(score)))
    return pairs
