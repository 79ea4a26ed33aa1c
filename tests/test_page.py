"""course_lib.page: the notebook preamble and the numbers glued for the prose, in a real kernel."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

import course_lib as cl

RECORD = "application/papermill.record/text/plain"


def _run(*sources: str) -> list:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources]
    )
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    return [cell.outputs for cell in notebook.cells]


GLUED = "import course_lib as cl\ncl.glue('gain', 2.5)"


def test_a_glued_value_is_the_record_myst_nb_writes_and_shows_nothing():
    """The site's build reads what MyST-NB's own glue would have written; nothing is shown."""
    ours, theirs = _run(
        GLUED, "from myst_nb import glue\nglue('gain', 2.5, display=False)"
    )
    assert [dict(o) for o in ours] == [dict(o) for o in theirs]
    [record] = ours
    assert record.output_type == "display_data"
    assert record.data == {RECORD: "2.5"}
    assert record.metadata["scrapbook"] == {
        "name": "gain", "mime_prefix": "application/papermill.record/"
    }


def test_a_numpy_or_torch_scalar_is_glued_as_its_plain_number():
    [numpy_out, torch_out] = _run(
        "import numpy, course_lib as cl\ncl.glue('a', numpy.mean([1.0, 2.0]))",
        "import torch\ncl.glue('b', torch.tensor(0.25))",
    )
    assert numpy_out[0].data == {RECORD: "1.5"} and torch_out[0].data == {RECORD: "0.25"}


def test_a_glue_name_must_be_an_identifier():
    with pytest.raises(ValueError, match="Python identifier such as 'dropout_gain', got 'a b'"):
        cl.glue("a b", 1.0)


def test_setup_seeds_styles_limits_threads_and_prints_the_environment():
    draw = "import torch, numpy\nprint(torch.rand(1).item(), numpy.random.rand())"
    threads = (
        "import torch, threadpoolctl, matplotlib\n"
        "print(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),\n"
        "      {i['num_threads'] for i in threadpoolctl.threadpool_info()},\n"
        "      matplotlib.rcParams['axes.spines.top'])"
    )
    first, a, b, state = _run(
        "import course_lib as cl\ncl.setup(3)", draw, "cl.setup(3)\n" + draw, threads
    )
    assert first[0].text.startswith(f"course_lib {cl.__version__} | torch ")
    assert a[0].text == b[0].text.split("\n", 1)[1]  # the same seed, the same draws
    assert state[0].text.split() == ["1", "True", "{1}", "False"]
