"""The notebooks as a collection: table of contents, setup cells, stored outputs, exercise wiring.

nbval (run by the same pytest command) re-executes each notebook and compares its outputs; these
tests check what nbval cannot see.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from course_lib.grading import chapters, exercises_of
from notebooks import (
    SETUP_METADATA,
    SETUP_TAG,
    repository_release,
    repository_url,
    setup_cell_source,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("exercises/*.ipynb")])
EXERCISES = [p for p in NOTEBOOKS if p.parent.name == "exercises"]


def _toc_files() -> list[str]:
    return re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_table_of_contents_lists_exactly_the_notebooks_in_chapter_order():
    listed = [f for f in _toc_files() if f.startswith(("chapters/", "exercises/"))]
    on_disk = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS)
    assert sorted(listed) == on_disk
    for folder in ("chapters/", "exercises/"):
        numbers = [int(Path(f).name[:2]) for f in listed if f.startswith(folder)]
        assert numbers == sorted(numbers), f"{folder} pages out of chapter order in _toc.yml"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", Path(f).name) for f in listed)


def test_each_chapter_has_its_exercises_as_its_sub_page():
    """Next/previous follow the learning path: chapter N, its exercises, chapter N+1, ..."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [entry for part in toc["parts"] for entry in part["chapters"]]
    exercises_in_sections = set()
    for entry in entries:
        page = entry["file"]
        assert not page.startswith("exercises/"), (
            f"{page} is a top-level entry: make it its chapter's section"
        )
        if not page.startswith("chapters/"):
            continue
        sections = [s["file"] for s in entry.get("sections", [])]
        exercise = "exercises/" + Path(page).name
        if (ROOT / f"{exercise}.ipynb").is_file():
            assert sections[:1] == [exercise], f"{page}: its first section must be {exercise}"
        exercises_in_sections.update(s for s in sections if s.startswith("exercises/"))
    captions = [part["caption"] for part in toc["parts"]]
    assert captions[-1] == "Reference" and "Exercises" not in captions, captions
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for p in EXERCISES}
    assert exercises_in_sections == on_disk


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_cell_is_the_setup_cell_from_config(path):
    first = nbformat.read(path, as_version=4).cells[0]
    expected = setup_cell_source(repository_url(), repository_release())
    assert first.cell_type == "code" and first.source == expected, (
        f"run: python tools/notebooks.py sync-setup {path.relative_to(ROOT)}"
    )
    assert SETUP_TAG in first.metadata.get("tags", [])
    for key, value in SETUP_METADATA.items():  # collapsed in JupyterLab and on Colab
        assert first.metadata.get(key) == value, (
            f"run: python tools/notebooks.py sync-setup {path.name}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_executed_in_order_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.execution_count for c in code]
    assert None not in counts, "a code cell was never executed: run make execute"
    assert counts == sorted(counts), "cells were executed out of order: run make execute"
    assert nb.cells[1].cell_type == "markdown" and nb.cells[1].source.startswith(
        f"# {int(path.name[:2])}."
    ), "the second cell is the title, '# N. Title'"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", f"stored error output in: {cell.source[:80]}"
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            assert not re.search(r"0x[0-9a-f]{6,}", text), (
                f"a memory address in compared output: {text[:80]}"
            )


@pytest.mark.parametrize("path", EXERCISES, ids=_ids(EXERCISES))
def test_exercise_notebook_checks_every_exercise_of_its_chapter(path):
    nb = nbformat.read(path, as_version=4)
    chapter = nb.metadata.get("course_lib", {}).get("chapter")
    assert chapter in chapters(), "metadata course_lib.chapter must name a chapter with exercises"
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for exercise in exercises_of(chapter):
        assert f'cl.check("{exercise.id}", {exercise.name})' in source, exercise.id
        solution = [
            c
            for c in nb.cells
            if c.cell_type == "code" and f'cl.solution("{exercise.id}")' in c.source
        ]
        assert solution and "hide-output" in solution[0].metadata.get("tags", []), (
            f"{exercise.id}: a cl.solution cell tagged hide-output (collapsed on the website)"
        )
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "dropdown" in markdown, "at least one open question with an answer in a dropdown"


def test_colab_installs_a_release_that_the_changelog_describes():
    """The setup cells install course_lib at `_config.yml`'s release (README, "Releasing"): a tag
    vX.Y.Z no newer than this version; the version and the release each have a CHANGELOG entry."""
    import course_lib

    def version(text):
        return tuple(int(part) for part in text.split("."))

    headings = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert course_lib.__version__ in headings, "CHANGELOG.md: add a '## X.Y.Z' entry"
    release = repository_release()
    if release.startswith("v"):
        assert release[1:] in headings and version(release[1:]) <= version(course_lib.__version__)


def test_a_release_that_is_no_tag_or_commit_is_refused(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/course\n  release: main\n")
    with pytest.raises(ValueError, match="must be a tag vX.Y.Z or a 40-digit commit hash"):
        repository_release(config)
    config.write_text("repository:\n  url: https://example.org/course\n")
    with pytest.raises(ValueError, match="no `repository: release:`"):
        repository_release(config)


def test_the_changelog_is_a_page_of_the_reference_part():
    """The site's errata: changelog.md includes CHANGELOG.md, whose releases list corrections."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = {part["caption"]: part["chapters"] for part in toc["parts"]}
    reference = [entry["file"] for entry in parts["Reference"]]
    assert "changelog" in reference
    assert re.search(r"```\{include\} CHANGELOG\.md", (ROOT / "changelog.md").read_text())
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.split(r"^## ", changelog, flags=re.M)[1:]
    assert releases and "### Corrections" in releases[0], "the newest release lists corrections"


CHAPTERS = [p for p in NOTEBOOKS if p.parent.name == "chapters"]


@pytest.mark.parametrize("path", CHAPTERS, ids=_ids(CHAPTERS))
def test_chapter_links_the_notation_page(path):
    """Symbols shared by chapters (notation.md) are defined once; each chapter points there."""
    markdown = "\n".join(
        cell.source for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "markdown"
    )
    assert re.search(r"\]\(\.\./notation\.md(#[\w-]+)?\)", markdown), (
        f"{path.name}: no link to the notation page, e.g. [notation](../notation.md)"
    )


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_number_the_prose_quotes_is_glued_by_a_cell(path):
    """A `{glue:text}` role in the prose names a value a cell glued (`cl.glue`), and each glued
    value is quoted: the site shows the number this run printed, never a stale one."""
    cells = nbformat.read(path, as_version=4).cells
    quoted = {
        name for cell in cells if cell.cell_type == "markdown"
        for name in GLUE_ROLE.findall(cell.source)
    }
    glued = [
        output.metadata["scrapbook"]["name"]
        for cell in cells if cell.cell_type == "code" for output in cell.outputs
        if "scrapbook" in output.get("metadata", {})
    ]
    assert len(glued) == len(set(glued)), f"{path.name}: a name glued twice: {sorted(glued)}"
    assert quoted <= set(glued), f"{path.name}: quoted, never glued: {sorted(quoted - set(glued))}"
    assert set(glued) <= quoted, f"{path.name}: glued, never quoted: {sorted(set(glued) - quoted)}"


# Issue 24: one way into course_lib for every page. `from course_lib import words` (a submodule
# used as one) is fine; `from course_lib.layers import Dropout` is not: write `cl.Dropout`.
SUBMODULE_IMPORT = re.compile(r"^\s*from\s+course_lib\.[\w.]+\s+import\b.*$", re.M)
OLD_PREAMBLE = (
    "cl.use_course_style(",
    "cl.seed_everything(",
    "threadpool_limits(",
    "cl.environment_report(",
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_notebook_imports_course_lib_one_way_and_starts_with_setup(path):
    """No `from course_lib.<module> import` line in any code cell, and the preamble (the first
    code cell after the Colab setup cell) imports `course_lib as cl` and calls `cl.setup()` in
    place of the style, seed, thread and environment lines, its output ignored by nbval."""
    cells = nbformat.read(path, as_version=4).cells
    for cell in cells:
        if cell.cell_type == "code":
            found = SUBMODULE_IMPORT.search(cell.source)
            assert found is None, (
                f"{path.name}: {found.group().strip()!r}: write cl.<name> (re-export it in "
                "course_lib/__init__.py if needed)"
            )
    preamble = [cell for cell in cells if cell.cell_type == "code"][1]
    assert "import course_lib as cl" in preamble.source, f"{path.name}: no preamble cell"
    assert re.search(r"^cl\.setup\(", preamble.source, re.M), (
        f"{path.name}: the preamble must call cl.setup()"
    )
    old = [line for line in OLD_PREAMBLE if line in preamble.source]
    assert not old, f"{path.name}: cl.setup() replaces {old}"
    assert "nbval-ignore-output" in preamble.metadata.get("tags", []), (
        f"{path.name}: the preamble prints the versions: tag it nbval-ignore-output"
    )
