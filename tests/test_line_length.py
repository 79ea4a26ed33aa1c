"""Every notebook's code lines and printed lines fit the code box at laptop width: 80 characters,
and so does every reference solution (a notebook shows it when a learner asks for it).

Code: every line of every code cell (the setup cell too), and every line of a code block in a
Markdown cell (a ``` or ~~~ fence: the site shows it in the same box). Printed: stream output and
the plain
text of results, as stored (what the website shows and nbval compares). Figures, HTML and
Markdown outputs wrap by themselves and are not counted. On a phone the code box scrolls
sideways inside itself (test_browser.py checks that the page does not).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_lib.grading import registry
from course_lib.grading.checker import solution_source

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("exercises/*.ipynb")])
LIMIT = 80


def markdown_code(source: str) -> list[str]:
    """The lines inside the fenced code blocks (``` or ~~~, MyST directives too) of Markdown."""
    lines, fence = [], ""
    for line in source.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            else:
                lines.append(line)
        elif stripped.startswith(("```", "~~~")):
            marks = stripped[0]
            fence = stripped[: len(stripped) - len(stripped.lstrip(marks))]
    return lines


def long_lines(nb: nbformat.NotebookNode, limit: int = LIMIT) -> list[str]:
    """The code and printed lines longer than `limit`, each as "cell N (code|output): line"."""
    found = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in markdown_code(cell.source):
                if len(line) > limit:
                    found.append(f"cell {number} (markdown code, {len(line)}): {line}")
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if len(line) > limit:
                found.append(f"cell {number} (code, {len(line)}): {line}")
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            if output.get("output_type") in ("execute_result", "display_data"):
                text = output.get("data", {}).get("text/plain", "")
                shown = ("image/", "text/html", "application/vnd.jupyter.widget-view+json")
                if any(k.startswith(shown) for k in output.get("data", {})):
                    text = ""  # a figure's, table's or widget's repr is not what the reader sees
            text = text if isinstance(text, str) else "".join(text)
            for line in text.splitlines():
                if len(line) > limit:
                    found.append(f"cell {number} (output, {len(line)}): {line}")
    return found


def test_the_checker_finds_long_code_and_output_lines():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "x = 1\n" + "y" * 81,
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="ok\n" + "z" * 90 + "\n"),
                nbformat.v4.new_output(
                    "display_data", data={"image/png": "", "text/plain": "<Figure " + "w" * 90}
                ),
            ],
        )
    ]
    found = long_lines(nb)
    assert len(found) == 2 and "(code, 81)" in found[0] and "(output, 90)" in found[1]
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "Text of any length " + "t" * 90 + "\n\n```python\nx = 1  # " + "c" * 80 + "\n```\n"
            "\n````{code-block} python\n" + "m" * 82 + "\n```\n" + "n" * 83 + "\n````\n"
        )
    ]
    found = long_lines(nb)
    assert [f.split(":")[0] for f in found] == [
        "cell 0 (markdown code, 89)", "cell 0 (markdown code, 82)", "cell 0 (markdown code, 83)"
    ], found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_lines_fit_80_characters(path):
    found = long_lines(nbformat.read(path, as_version=4))
    assert not found, f"{len(found)} lines over {LIMIT} characters:\n" + "\n".join(found[:15])


@pytest.mark.parametrize("exercise", registry.all_exercises(), ids=lambda e: e.id)
def test_reference_solutions_fit_80_characters(exercise):
    wide = [line for line in solution_source(exercise.id).splitlines() if len(line) > LIMIT]
    assert not wide, f"{len(wide)} lines over {LIMIT} characters:\n" + "\n".join(wide)
