"""Accessibility of the built website: axe-core (the copy the axe-playwright-python package
bundles, no network) finds no serious or critical violation on any page in light mode, nor in dark
mode on a page of each kind. A file of its own, so that pytest-xdist runs it beside
test_browser.py (each file runs on one worker; the book is built once for both)."""
from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from site_fixtures import (  # noqa: F401  browser, server and site are fixtures
    _IMAGES_JS,
    offline_context,
    toc_docnames,
)

PAGES = toc_docnames()
CHAPTERS = [d for d in PAGES if d.startswith("chapters/")]
EXERCISES = [d for d in PAGES if d.startswith("exercises/")]
VIEWPORT = {"width": 1280, "height": 900}
SERIOUS = ("serious", "critical")  # axe-core impacts that fail a page


# Dark mode changes colours, not structure: axe checks it on a page of each kind (a table of
# cited works, code, figures, maths, an exercise, the API reference), light mode on every page.
DARK_AXE_PAGES = [PAGES[0], CHAPTERS[1], CHAPTERS[4], EXERCISES[4], "notation", "api"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_accessibility_violation(server, browser, scheme):
    """axe-core (the copy the axe-playwright-python package bundles, no network) on every page in
    light mode, and in dark mode on a page of each kind."""
    context = offline_context(browser, server.base, viewport=VIEWPORT, color_scheme=scheme)
    axe, problems = Axe(), []
    try:
        page = context.new_page()
        for docname in PAGES if scheme == "light" else DARK_AXE_PAGES:
            page.goto(f"{server.base}{docname}.html", wait_until="load")
            page.evaluate(_IMAGES_JS)
            for violation in axe.run(page).response["violations"]:
                if violation["impact"] in SERIOUS:
                    nodes = [node["html"][:80] for node in violation["nodes"][:3]]
                    problems.append(f"{docname} ({scheme}): {violation['id']} "
                                    f"({violation['impact']}, {len(violation['nodes'])}): {nodes}")
        page.close(run_before_unload=True)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
