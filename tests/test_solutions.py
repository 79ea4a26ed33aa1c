"""Revealing a reference solution is a deliberate act, wherever an exercise notebook is opened.

- `cl.solution("id")` shows how to reveal the solution and nothing of it; `reveal=True` shows it.
- "Run All": every exercise notebook, executed top to bottom, shows no reference solution in its
  outputs; neither do the committed notebooks' stored outputs (what Colab or a notebook viewer
  shows). Text inside a closed, click-to-open `<details>` block does not count as shown.
- The website still has every solution, collapsed: the build renders it from course_lib
  (`_ext/course_site.py`; checked in the browser by test_browser.py).
The detector is tested on notebooks that do show a solution (the test of the test).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import course_lib as cl
from course_lib.grading import exercises_of, get
from course_lib.grading.checker import HiddenSolution, solution_source

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = sorted(ROOT.glob("exercises/*.ipynb"))
_CLOSED_DETAILS = re.compile(
    r"<details(?![^>]*\bopen\b)[^>]*>.*?</details>", re.DOTALL | re.IGNORECASE
)


def solution_lines(exercise_id: str) -> list[str]:
    """The distinctive lines of a reference solution: any one of them in an output reveals it."""
    lines = [line.strip() for line in solution_source(exercise_id).splitlines()]
    return [line for line in lines if len(line) >= 12 and line not in ('"""', "'''")]


def visible_text(output: dict) -> str:
    """What a reader of the stored output sees without clicking anything open."""
    parts = [output.get("text", "")]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime in ("application/javascript",):
            parts.append(value if isinstance(value, str) else "".join(value))
    return _CLOSED_DETAILS.sub("", "\n".join(parts))


def shown_solutions(nb: nbformat.NotebookNode) -> list[str]:
    """The exercise ids whose reference solution some output of the notebook shows."""
    chapter = nb.metadata.get("course_lib", {}).get("chapter")
    shown = "\n".join(
        visible_text(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    found = []
    for exercise in exercises_of(chapter):
        if any(line in shown for line in solution_lines(exercise.id)):
            found.append(exercise.id)
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_solution_is_hidden_until_revealed_deliberately():
    hidden = cl.solution("activations.step")
    assert isinstance(hidden, HiddenSolution)
    text = repr(hidden) + hidden._repr_markdown_()
    assert 'cl.solution("activations.step", reveal=True)' in text
    assert not any(line in text for line in solution_lines("activations.step"))
    assert all(len(line) <= 80 for line in repr(hidden).splitlines())
    shown = cl.solution("activations.step", reveal=True)
    assert "def step(" in repr(shown) and solution_lines("activations.step")[-1] in repr(shown)
    with pytest.raises(TypeError, match="reveal must be True or False"):
        cl.solution("activations.step", reveal="yes")
    with pytest.raises(KeyError):
        cl.solution("activations.no_such_exercise")


def test_the_detector_finds_a_shown_solution_and_ignores_a_closed_block():
    code = solution_source("activations.step")
    nb = nbformat.v4.new_notebook(metadata={"course_lib": {"chapter": "activations"}})
    cell = nbformat.v4.new_code_cell('cl.solution("activations.step")')
    nb.cells = [cell]
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data={"text/plain": repr(HiddenSolution("x.y"))})
    ]
    assert shown_solutions(nb) == []
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data={"text/markdown": f"```python\n{code}```"})
    ]
    assert shown_solutions(nb) == ["activations.step"]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=code)]
    assert shown_solutions(nb) == ["activations.step"]
    closed = f"<details><summary>Solution</summary><pre>{code}</pre></details>"
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": closed, "text/plain": "..."})
    ]
    assert shown_solutions(nb) == []
    cell.outputs[0].data["text/html"] = closed.replace("<details>", "<details open>")
    assert shown_solutions(nb) == ["activations.step"]


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=_ids(EXERCISE_NOTEBOOKS))
def test_committed_notebook_stores_no_solution(path):
    nb = nbformat.read(path, as_version=4)
    assert not shown_solutions(nb), (
        f"{path.name} stores reference solutions in its outputs: {shown_solutions(nb)}; call "
        "cl.solution(id) without reveal=True and re-execute (python tools/notebooks.py "
        "execute)"
    )


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=_ids(EXERCISE_NOTEBOOKS))
def test_run_all_shows_no_solution(path, tmp_path):
    """Execute the notebook top to bottom, as "Run All" does, and read every output."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    assert not shown_solutions(nb), (
        f"Run All on {path.name} shows the solutions of {shown_solutions(nb)}"
    )
    calls = [c for c in nb.cells if c.cell_type == "code" and "solution(" in c.source]
    assert calls, f"{path.name} offers no way to reveal a solution"
    for cell in calls:
        text = "\n".join(visible_text(o) for o in cell.outputs)
        assert "reveal=True" in text, f"{path.name}: {cell.source!r} does not say how to reveal it"


def test_every_exercise_solution_exists_for_the_website():
    for path in EXERCISE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for exercise_id in re.findall(
                r"solution\(\s*[\"']([\w.]+)[\"']", cell.source if cell.cell_type == "code" else ""
            ):
                assert "def " in solution_source(
                    get(exercise_id).id
                ) or "class " in solution_source(exercise_id)
