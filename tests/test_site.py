"""The website build: strict, self-contained, complete; and the Colab setup cell as Colab runs it.

- The book builds from scratch with warnings as errors; every page of the table of contents is there.
- The site carries its own MathJax (fonts included) and loads nothing from the network.
- A broken reference, link or image fails the build (shown on a throwaway book: the test of the test).
- The API reference documents every course_lib module; the performance page is written from the
  measurements `make bench` takes.
- A chapter notebook runs in a clean virtual environment without course_lib, whose setup cell
  installs course_lib from the local checkout (COURSE_LIB_SOURCE), as Colab installs it from the
  repository URL.
"""
from __future__ import annotations

import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

import course_lib
from site_fixtures import ROOT, build_book, notebook_docnames, site_build, toc_docnames

NOT_IN_API = {"exercises"}  # the exercises' reference solutions are revealed in the notebooks only


@pytest.fixture(scope="module")
def site():
    return site_build()


def test_book_builds_strictly_from_scratch(site):
    assert site.returncode == 0 and not site.problems, (
        f"the book build failed (exit {site.returncode}):\n" + "\n".join(site.problems or site.log.splitlines()[-30:])
    )
    missing = [d for d in toc_docnames() if not (site.html / f"{d}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"
    print(f"book built in {site.seconds:.0f} s")


def test_site_carries_its_own_assets(site):
    mathjax = site.html / "_static" / "mathjax"
    assert (mathjax / "tex-mml-chtml.js").is_file()
    assert list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")), "MathJax fonts missing"
    remote = re.compile(
        r"<(?:script|img|iframe|audio|video|source)\b[^>]*\bsrc=\"(?:https?:)?//[^\"]+\""
        r"|<link\b[^>]*\brel=\"(?:stylesheet|preload|modulepreload|icon)\"[^>]*\bhref=\"(?:https?:)?//[^\"]+\""
    )
    for page in site.html.rglob("*.html"):
        text = page.read_text(errors="replace")
        found = remote.findall(text)
        assert not found, f"{page.relative_to(site.html)} loads from the network: {found}"
        if 'class="math' in text:
            assert "_static/mathjax/tex-mml-chtml.js" in text, f"{page.name}: maths without the local MathJax"


def test_setup_cell_is_hidden_and_solutions_are_collapsed_in_the_html(site):
    for docname in notebook_docnames():
        text = (site.html / f"{docname}.html").read_text()
        assert "# Colab setup" not in text, f"{docname}: the Colab setup cell is shown"
        if docname.startswith("exercises/"):
            assert "reference-solution" in text and "Show the reference solution" in text, (
                f"{docname}: no collapsed reference solution (are its solution cells executed, tagged hide-output?)"
            )


def _throwaway_book(root: Path, page: str) -> Path:
    """A two-page book with the course's configuration, extension and styles."""
    root.mkdir(parents=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    for folder in ("_ext", "_static"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (root / "intro.md").write_text("# Intro\n\n(intro-label)=\n## A section\n\nMaths: $x^2$.\n")
    (root / "page.md").write_text(page)
    return root


def test_broken_pages_fail_the_build(tmp_path):
    """The test of the test for the build: a bad reference, broken links, an unknown citation, a
    missing image, an uncollapsed solution and a widget output are each reported; the build fails."""
    book = _throwaway_book(tmp_path / "book", (
        "# Page\n\n"
        "A good reference: {ref}`intro-label`.\n\n"
        "A bad reference: {ref}`no-such-label`.\n\n"
        "A broken link: [elsewhere](no_such_page.md).\n\n"
        "A good heading link: [there](intro.md#a-section); a broken one: [there](intro.md#no-such-heading).\n\n"
        "An unknown citation {cite:p}`no_such_key_1999`.\n\n"
        "![A missing figure](no_such_figure.png)\n"
    ))
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Exercises"),
        nbformat.v4.new_code_cell('cl.solution("x.y")', outputs=[  # shown uncollapsed: no hide-output tag
            nbformat.v4.new_output("stream", name="stdout", text="def y():\n    return 1\n")]),
        nbformat.v4.new_code_cell("widgets.IntSlider()", outputs=[  # a widget, blank without a kernel
            nbformat.v4.new_output("display_data", data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
                "text/plain": "IntSlider(value=0)"})]),
    ]
    nbformat.write(nb, book / "exercises.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n  - file: exercises\n")
    result = build_book(book, tmp_path / "out", timeout=300)
    assert result.returncode != 0, "a broken page built without failing"
    log = "\n".join(result.problems)
    assert "no-such-label" in log, log
    assert "no_such_page" in log, log
    assert "no_such_figure.png" in log, log
    assert "no-such-heading" in log and "no_such_key_1999" in log, log
    assert "a-section" not in log, log
    assert "reference solution is shown uncollapsed" in log, log
    assert "shows an interactive widget" in log, log
    assert "intro-label" not in log, log


def test_api_reference_documents_every_module(site):
    text = (ROOT / "api.md").read_text()
    documented = set(re.findall(r"automodule:: course_lib\.(\w+)", text))
    modules = {m.name for m in pkgutil.iter_modules(course_lib.__path__) if not m.name.startswith("_")} - NOT_IN_API
    assert modules <= documented, f"add to api.md: {sorted(modules - documented)}"
    html = (site.html / "api.html").read_text()
    for module in sorted(documented):
        assert f'id="module-course_lib.{module}"' in html, f"course_lib.{module} is missing from the API page"
    assert html.count('class="sig sig-object py"') >= len(documented), "the API page documents too few objects"


def test_performance_page_is_written_from_the_measurements(tmp_path):
    assert "benchmarks/notebooks.md" in (ROOT / "performance.md").read_text()
    assert (ROOT / "benchmarks" / "notebooks.md").is_file(), "run make bench (or tools/bench_page.py)"
    rows = [  # budgets: 30 s (chapter 7: 60 s) of kernel CPU time where measured, 1 GB
        {"notebook": "chapters/02_fast.ipynb", "seconds": 12.34, "cpu_seconds": 11.0, "peak_mb": 420},
        {"notebook": "chapters/03_slow.ipynb", "seconds": 75.0, "peak_mb": 700},
        {"notebook": "chapters/04_loaded.ipynb", "seconds": 45.0, "cpu_seconds": 25.0, "peak_mb": 900},
        {"notebook": "chapters/05_big.ipynb", "seconds": 5.0, "cpu_seconds": 5.0, "peak_mb": 1100},
        {"notebook": "chapters/07_hyperparameter_optimization.ipynb", "seconds": 50.0,
         "cpu_seconds": 50.0, "peak_mb": 500},
    ]
    measurements = tmp_path / "bench.json"
    measurements.write_text(json.dumps(rows))
    out = tmp_path / "notebooks.md"
    subprocess.run([sys.executable, str(ROOT / "tools" / "bench_page.py"), str(measurements), str(out)],
                   check=True, capture_output=True, cwd=tmp_path)
    table = out.read_text()
    assert "| 02_fast | 12.3 | 11.0 | 420 | yes |" in table
    assert "| 03_slow | 75.0 | - | 700 | **no** |" in table
    assert "| 04_loaded | 45.0 | 25.0 | 900 | yes |" in table  # slowed by other load, not over
    assert "| 05_big | 5.0 | 5.0 | 1100 | **no** |" in table  # over 1 GB
    assert "| 07_hyperparameter_optimization | 50.0 | 50.0 | 500 | yes |" in table
    assert "**All 5 notebooks** | 187.3 | **166.0** | **1100** (max) | **no** |" in table


def _purelib_paths() -> list[str]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(p for p in paths if Path(p).is_dir())


def test_setup_cell_installs_course_lib_in_a_clean_environment(tmp_path, monkeypatch):
    """Run a chapter as Colab would: a kernel without course_lib, whose first cell installs it.

    The clean environment sees this environment's third-party packages (torch, numpy, ...: Colab
    has its own) through a .pth file, but not course_lib. The setup cell's install source is a copy
    of this checkout (COURSE_LIB_SOURCE) instead of the repository URL; pip runs offline.
    """
    chapters = [d for d in notebook_docnames() if d.startswith("chapters/")]
    assert chapters, "the site lists no chapter notebook (_toc.yml)"
    from nbclient import NotebookClient

    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".venv", "_build", "artifacts", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "course-dependencies.pth").write_text("\n".join(_purelib_paths()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_LIB_SOURCE")}
    probe = subprocess.run([str(python), "-c", "import course_lib"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
    assert probe.returncode != 0 and "No module named 'course_lib'" in probe.stderr, "the clean venv has course_lib"

    kernel_dir = tmp_path / "jupyter" / "kernels" / "clean"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "clean (no course_lib)", "language": "python",
        # The install source; pip offline; build with the setuptools at hand (for pip, "0" turns build
        # isolation off, which would fetch setuptools from the index).
        "env": {"COURSE_LIB_SOURCE": str(checkout), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)

    path = checkout / f"{chapters[0]}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].source.startswith("# Colab setup"), f"{chapters[0]} does not start with the setup cell"
    # The setup cell and a probe: the rest of the chapter is nbval's (running it here took 90 s).
    check = "import course_lib, sys\nprint(course_lib.__file__)\nprint(sys.prefix)"
    nb.cells = [nb.cells[0], nbformat.v4.new_code_cell(check)]
    NotebookClient(nb, timeout=300, kernel_name="clean", resources={"metadata": {"path": str(path.parent)}}).execute()
    where, prefix = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert Path(prefix) == venv, f"the kernel ran in {prefix}, not the clean venv"
    assert Path(where).is_relative_to(purelib), f"course_lib imported from {where}, not installed into the venv"
