"""Sphinx extension of the course website (loaded from `_config.yml`, `sphinx: local_extensions`).

- Offline maths: copies MathJax 3 from the `django-static-mathjax` package (installed by pip with
  the `book` extra, so it comes from a package registry at install time, never from a CDN at view
  time) into `_build/html/_static/mathjax`, where `mathjax_path` points.
- Offline pages: a page that would load a script or stylesheet from the network is a build
  warning, hence an error under `--warningiserror`; so is a page that shows an ipywidgets output
  (blank without a kernel: widget cells are tagged remove-output, a static figure shows the same).
- Exercise pages: the notebook's `cl.solution("id")` cell stores only how to reveal the solution
  (`reveal=True`), never the solution itself; at build time the page shows in its place the
  reference solution's source, taken from course_lib, collapsed behind a toggle that reads "Show
  the reference solution". A solution cell without the `hide-output` tag, or naming an unknown
  exercise, is a build warning.
- Check results (`cl.check` prints a line starting with ✔ or ✘) get the classes `check-pass` or
  `check-fail`, styled in `_static/course.css`.
- Figures produced by code cells get alt text: the cell's own (`"mystnb": {"image": {"alt": ...}}`
  in its metadata), else the caption sentence that follows the cell; a figure with neither is a
  build warning (a screen reader would only hear "image").
- Clean consoles: the theme gets an explicit default light/dark mode ("auto": the reader's system
  setting; without it the theme logs an error on a first visit), and a script that a page would
  include twice (sphinx-thebe's configuration, under Jupyter Book 1) is included once.
- API reference: course_lib docstrings are plain text with Markdown-style `code`; a `|x|` in them
  (an absolute value) is escaped so that reStructuredText does not read it as a substitution.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_DIR = "mathjax"  # under _static in the built site
# Combined MathJax bundles the site does not load (it loads tex-mml-chtml.js); the components
# that bundle loads lazily (extensions, fonts, menu, accessibility) are all kept.
_UNUSED_BUNDLES = {
    "tex-chtml-full-speech.js", "tex-chtml-full.js", "tex-chtml.js", "tex-mml-svg.js",
    "tex-svg-full.js", "tex-svg.js", "mml-chtml.js", "mml-svg.js", "node-main.js", "latest.js",
}
SOLUTION_CALL = re.compile(r"\bsolution\(")
SOLUTION_ID = re.compile(r"\bsolution\(\s*[\"']([A-Za-z_]\w*\.[A-Za-z_]\w*)[\"']")
CHECK_LINE = re.compile(r"^\s*([✔✘])\s", re.MULTILINE)
SHOW_SOLUTION = "Show the reference solution"
HIDE_SOLUTION = "Hide the reference solution"


def mathjax_source() -> Path:
    """The `es5` folder of the MathJax 3 copy that the `django-static-mathjax` package installs."""
    try:
        import mathjax  # the import name of the `django-static-mathjax` distribution
    except ImportError as exc:
        raise ExtensionError(
            "MathJax for the offline site is missing: `pip install django-static-mathjax` "
            "(part of the `book` extra; `make venv` installs it)"
        ) from exc
    es5 = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise ExtensionError(f"no MathJax 3 bundle in {es5}: reinstall django-static-mathjax")
    return es5


def _is_remote(uri: str | None) -> bool:
    return bool(uri) and bool(re.match(r"^(https?:)?//", uri))


def check_config(app: Sphinx, config: Any) -> None:
    if _is_remote(config.mathjax_path):
        logger.warning(
            "mathjax_path %s is on the network; the site must render offline "
            "(set mathjax_path: %s/tex-mml-chtml.js)", config.mathjax_path, MATHJAX_DIR,
        )
    mathjax_source()  # fail early, with an install hint, when MathJax is missing


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    if app.builder is None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / MATHJAX_DIR
    shutil.copytree(
        mathjax_source(), dest, dirs_exist_ok=True,
        ignore=lambda folder, names: [n for n in names if n in _UNUSED_BUNDLES],
    )


def page_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Include each script once, and give the theme its default light/dark mode."""
    context.setdefault("default_mode", "auto")  # pydata-sphinx-theme reads it from the context
    scripts, seen = [], set()
    for asset in context.get("script_files", []):
        key = (str(getattr(asset, "filename", asset) or ""), str(getattr(asset, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            scripts.append(asset)
    if "script_files" in context:
        context["script_files"][:] = scripts


_REMOTE_ASSET = re.compile(
    r"<script\b[^>]*\bsrc=\"((?:https?:)?//[^\"]+)\"|<link\b[^>]*\brel=\"(?:stylesheet|preload)\"[^>]*\bhref=\"((?:https?:)?//[^\"]+)\""
)


def no_remote_assets(app: Sphinx, exc: Exception | None) -> None:
    """Warn about any page that would fetch a script or stylesheet from the network."""
    if exc is not None or app.builder is None or app.builder.format != "html":
        return
    for page in sorted(Path(app.outdir).rglob("*.html")):
        text = page.read_text(errors="replace")
        for match in _REMOTE_ASSET.finditer(text):
            logger.warning(
                "%s loads %s from the network; the site must work offline",
                page.relative_to(app.outdir), match.group(1) or match.group(2),
            )
        if "application/vnd.jupyter.widget-view+json" in text:
            logger.warning(
                "%s shows an interactive widget, which is blank without a kernel: tag the widget cell "
                "remove-output and draw the same as a static figure", page.relative_to(app.outdir),
            )


def _cell_source(cell: nodes.Element) -> str:
    for child in cell.children:
        if child.get("nb_element") == "cell_code_source":
            return child.astext()
    return ""


def _caption_after(cell: nodes.Element) -> str:
    """The text of the first paragraph after `cell` (before the next code cell), or ''."""
    parent = cell.parent
    if parent is None:
        return ""
    for sibling in parent.children[parent.index(cell) + 1:]:
        if isinstance(sibling, nodes.paragraph):
            return " ".join(sibling.astext().split())
        if isinstance(sibling, nodes.container) and sibling.get("nb_element") == "cell_code":
            return ""
    return ""


def _render_solution(cell: nodes.Element, source: str) -> None:
    """Put the reference solution's source, from course_lib, in the (collapsed) output of `cell`."""
    match = SOLUTION_ID.search(source)
    try:
        from course_lib.grading.checker import solution_source

        code = solution_source(match.group(1)) if match else None
    except KeyError:
        code = None
    if code is None:
        logger.warning("a solution cell names no known exercise: %s", source.strip()[:80], location=cell)
        return
    block = nodes.literal_block(code, code, language="python", classes=["reference-solution-code"])
    outputs = [c for c in cell.children if c.get("nb_element") == "cell_code_output"]
    if outputs:
        del outputs[0][:]
        outputs[0] += block
    else:
        cell += nodes.container("", block, nb_element="cell_code_output", classes=["cell_output"])


class CoursePages(SphinxPostTransform):
    """Solution toggles, check-result classes and figure alt text on notebook pages."""

    default_priority = 150  # before myst-nb wraps hidden outputs in toggles (priority 199)
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") != "cell_code":
                continue
            source = _cell_source(cell)
            if SOLUTION_CALL.search(source):
                if cell.get("hide_mode") in ("output", "all", "input+output"):
                    cell["prompt_show"], cell["prompt_hide"] = SHOW_SOLUTION, HIDE_SOLUTION
                    cell["classes"].append("reference-solution")
                    _render_solution(cell, source)
                elif any(c.get("nb_element") == "cell_code_output" for c in cell.children):
                    logger.warning(
                        "a reference solution is shown uncollapsed: tag the cell `hide-output`",
                        location=cell,
                    )
            for block in cell.findall(nodes.literal_block):
                marks = CHECK_LINE.findall(block.astext())
                if marks:
                    block["classes"] += ["check-result", "check-fail" if "✘" in marks else "check-pass"]
            caption = None
            for image in cell.findall(nodes.image):
                alt = image.get("alt", "")
                if not alt or alt == image.get("uri") or alt.endswith((".png", ".jpg", ".svg")):
                    if caption is None:
                        caption = _caption_after(cell)
                    if not caption:
                        logger.warning(
                            "a figure has no alt text: give its cell the metadata "
                            '"mystnb": {"image": {"alt": "..."}} or a caption paragraph after it',
                            location=cell,
                        )
                        continue
                    image["alt"] = caption if len(caption) <= 300 else caption[:297] + "..."


def escape_bars(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Escape `|` inside docstring lines (absolute values, "a | b"), except in reST tables."""
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if "|" in line and not stripped.startswith(("|", "+")):
            lines[i] = re.sub(r"(?<!\\)\|", r"\\|", line)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", check_config)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", page_assets, priority=999)  # last: others add scripts before
    app.connect("build-finished", no_remote_assets)
    app.add_post_transform(CoursePages)
    app.connect("autodoc-process-docstring", escape_bars)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
