"""Colour bars over discrete classes (issue 29): one band per class, its tick at the centre."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import course_lib as cl  # noqa: E402


def test_class_norm_gives_each_class_its_colour_and_a_centred_tick():
    norm = cl.class_norm(10)
    labels = np.arange(10)
    assert norm(labels).tolist() == list(range(10))  # class k: the k-th colour of tab10
    fig, ax = plt.subplots()
    points = ax.scatter(labels, labels, c=labels, cmap="tab10", norm=norm)
    colours = points.to_rgba(labels)
    np.testing.assert_allclose(colours, plt.get_cmap("tab10")(labels))
    bar = fig.colorbar(points, ax=ax, ticks=range(10))
    edges = np.asarray(bar._boundaries)  # the bands: [k - 1/2, k + 1/2]
    np.testing.assert_allclose(edges, np.arange(11) - 0.5)
    centres = (edges[:-1] + edges[1:]) / 2
    np.testing.assert_allclose(bar.get_ticks(), centres)
    plt.close(fig)
    with pytest.raises(ValueError, match="at least 1"):
        cl.class_norm(0)
