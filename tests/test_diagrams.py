"""course_lib.diagrams: the network and convolution drawings, and their argument checks."""
from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from course_lib.diagrams import draw_convolution, draw_network  # noqa: E402


def test_diagrams_draw_and_validate():
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2)
    draw_network([3, 4, 2], ax=a)
    draw_convolution(7, 3, stride=2, padding=1, position=1, ax=b)
    assert "4 outputs" in b.get_title()
    plt.close(fig)
    with pytest.raises(ValueError):
        draw_network([3])
    with pytest.raises(ValueError):
        draw_convolution(5, 3, position=9)
