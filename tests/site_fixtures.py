"""The website under test: a strict build, the pages the table of contents lists, a local server,
a sandboxed Chromium, and the checks one page must pass (used by test_site.py and test_browser.py).

The book is built once per test run (a fresh `--all` build, so that no warning hides in an
incremental one) into `artifacts/site/_build/html`; `artifacts/` is git-ignored. Screenshots go to
`artifacts/screenshots/` for a person to look at.
"""
from __future__ import annotations

import fcntl
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
BUILD_TIMEOUT = 900  # seconds


# --- the book -------------------------------------------------------------------------------

def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def toc_docnames(root: Path = ROOT) -> list[str]:
    """Every page the table of contents lists, in reading order (root page first)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(str(Path(entry["file"]).with_suffix("")))
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key, []))

    for key in ("parts", "chapters", "sections"):
        walk(toc.get(key, []))
    return names


def notebook_docnames(root: Path = ROOT) -> list[str]:
    return [d for d in toc_docnames(root) if (root / f"{d}.ipynb").is_file()]


@dataclass
class BuildResult:
    source: Path
    html: Path
    returncode: int
    log: str
    seconds: float

    @property
    def problems(self) -> list[str]:
        """Warning and error lines of the build log."""
        return [line for line in self.log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]


def build_book(source: Path, output: Path, timeout: float = BUILD_TIMEOUT) -> BuildResult:
    """Build the book in `source` from scratch, strictly (warnings are errors), into `output`."""
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(source), "--path-output", str(output), "--all",
               "--warningiserror", "--keep-going"]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    return BuildResult(source, output / "_build" / "html", proc.returncode, log, seconds)


@functools.cache
def site_build() -> BuildResult:
    """The course book, built once per test run into artifacts/site. Under pytest-xdist
    (`make test`) the workers share one build: the first to ask builds it while the others wait
    on a lock, then read its result, stamped with the run's id."""
    output = ARTIFACTS / "site"
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return build_book(ROOT, output)
    ARTIFACTS.mkdir(exist_ok=True)
    record = ARTIFACTS / "site-build.json"
    with open(ARTIFACTS / "site-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists() and (done := json.loads(record.read_text()))["run"] == run:
            return BuildResult(ROOT, Path(done["html"]), done["returncode"], done["log"],
                               done["seconds"])
        result = build_book(ROOT, output)
        record.write_text(json.dumps({
            "run": run, "html": str(result.html), "returncode": result.returncode,
            "log": result.log, "seconds": result.seconds,
        }))
        return result


# --- serving and browsing -----------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class SiteServer:
    """A static file server for a built site on 127.0.0.1, in a background thread."""

    def __init__(self, html: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(html))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SiteServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def launch_chromium(playwright):
    """Debian's Chromium, driven by Playwright (never a browser Playwright downloads)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class PageReport:
    docname: str
    title: str = ""
    problems: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # network requests the sandbox refused
    maths: int = 0  # maths elements typeset
    images: int = 0  # content images loaded
    solutions: int = 0  # solution toggles checked


def offline_context(browser, base: str, **options):
    """A browser context that may load only the local site: every other request is aborted."""
    context = browser.new_context(**options)
    blocked: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(base) or url.startswith(("data:", "blob:", "about:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    context.blocked = blocked  # type: ignore[attr-defined]
    return context


_MATHS_JS = """async () => {
  const maths = Array.from(document.querySelectorAll('article .math'));
  if (!maths.length) return {count: 0, untypeset: 0, errors: 0, loaded: true};
  if (!window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise)
    return {count: maths.length, untypeset: maths.length, errors: 0, loaded: false};
  await window.MathJax.startup.promise;
  const untypeset = maths.filter(m => !m.querySelector('mjx-container')).length;
  const errors = document.querySelectorAll('article mjx-merror').length;
  return {count: maths.length, untypeset, errors, loaded: true};
}"""

_IMAGES_JS = """async () => {
  const images = Array.from(document.querySelectorAll('img'));
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  const base = name => (name || '').split('/').pop();
  return images.map(img => ({
    src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
    alt: (img.getAttribute('alt') || '').trim(), content: !!img.closest('article'),
    caption: !!(img.closest('figure') && img.closest('figure').querySelector('figcaption')),
    altIsFile: base(img.getAttribute('alt')) === base(img.getAttribute('src')),
  }));
}"""


def inspect_page(
    context, base: str, docname: str, config: dict, *, notebook: bool, screenshot: str | None = None
) -> PageReport:
    """Load one page and report everything a reader would find wrong with it."""
    report = PageReport(docname)
    problems = report.problems
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: req.url.startswith(base)
            and problems.append(f"failed local request: {req.url} ({req.failure})"))
    page.on("response", lambda res: res.url.startswith(base) and res.status >= 400
            and problems.append(f"local request {res.url} answered {res.status}"))
    blocked_before = len(context.blocked)
    url = f"{base}{docname}.html"
    response = page.goto(url, wait_until="load")
    if base.startswith("http") and (response is None or response.status != 200):
        problems.append(f"{url} answered {response.status if response else 'nothing'}")
        page.close()
        return report
    if page.locator("article h1").count():
        report.title = page.locator("article h1").first.inner_text().strip().rstrip("#").strip()
    else:
        problems.append("page has no title (h1)")

    for image in page.evaluate(_IMAGES_JS):
        if not image["loaded"]:
            problems.append(f"image not loaded: {image['src']}")
        elif image["content"]:
            report.images += 1
            if (not image["alt"] or image["altIsFile"]) and not image["caption"]:
                problems.append(f"image without alt text or caption: {image['src']}")

    maths = page.evaluate(_MATHS_JS)
    report.maths = maths["count"] - maths["untypeset"]
    if not maths["loaded"]:
        problems.append(f"MathJax did not load; {maths['count']} maths elements left as TeX")
    elif maths["untypeset"]:
        problems.append(f"{maths['untypeset']} of {maths['count']} maths elements not typeset")
    if maths["errors"]:
        problems.append(f"{maths['errors']} MathJax errors (mjx-merror)")
    if page.locator("article .math").count() and page.locator("mjx-container").count() == 0:
        problems.append("page has maths but no typeset output")

    if screenshot:  # as a reader first sees the page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=True)

    if notebook:
        problems += _launch_problems(page, base, docname, config)
        if page.locator("article").get_by_text("# Colab setup").count():
            problems.append("the Colab setup cell is shown on the page (tag it remove-cell)")
    if docname.startswith("exercises/"):
        report.solutions = _solution_problems(page, problems, screenshot)

    page.wait_for_timeout(50)  # let late console messages arrive
    report.blocked = context.blocked[blocked_before:]
    for blocked in report.blocked:
        problems.append(f"page requested a network resource (blocked): {blocked}")
    page.close()
    return report


def expected_launch_links(config: dict, docname: str) -> dict[str, str]:
    """The launch URLs for a notebook, derived from `_config.yml`'s repository URL: Colab's, and
    Binder's where `_config.yml` configures one (it does not: README, "Colab and Binder")."""
    repo = config["repository"]
    parts = urlsplit(repo["url"]).path.strip("/").split("/")
    org, name = parts[0], parts[1].removesuffix(".git")
    branch = repo.get("branch", "main")
    path = f"{(repo.get('path_to_book') or '').strip('/') + '/' if repo.get('path_to_book') else ''}{docname}.ipynb"
    launch = config["launch_buttons"]
    ui = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    links = {"colab": f"{launch['colab_url'].rstrip('/')}/github/{org}/{name}/blob/{branch}/{path}"}
    if launch.get("binderhub_url"):
        links["binder"] = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{org}/{name}/{branch}?urlpath={ui}/{path}"
    return links


def _launch_problems(page, base: str, docname: str, config: dict) -> list[str]:
    problems = []
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    expected = expected_launch_links(config, docname)
    for kind, url in expected.items():
        if url not in hrefs:
            found = [h for h in hrefs if kind in h]
            problems.append(f"{kind} launch link should be {url}; found {found or 'none'}")
    if "binder" not in expected:  # no Binder configured: no button that would build nothing
        problems += [f"a Binder launch link, but none is configured: {h}" for h in hrefs
                     if "/v2/gh/" in h]
    downloads = [h for h in hrefs if h.startswith(base) and h.endswith(f"{docname}.ipynb")]
    if not downloads:
        problems.append(f"no download link for {docname}.ipynb")
    else:
        try:
            if base.startswith("file:"):
                text = Path(urlsplit(downloads[0]).path).read_text()
                ok = "cells" in json.loads(text)
            else:
                response = page.request.get(downloads[0])
                ok = response.status == 200 and "cells" in json.loads(response.text())
        except (OSError, ValueError):
            ok = False
        if not ok:
            problems.append(f"download link {downloads[0]} does not give the notebook")
    return problems


def _solution_problems(page, problems: list[str], screenshot: str | None = None) -> int:
    """Every reference solution is collapsed until its toggle is clicked, then shown."""
    unhidden = page.evaluate("""() => Array.from(document.querySelectorAll('article div.cell'))
        .filter(c => /\\bsolution\\(/.test((c.querySelector('.cell_input') || {}).textContent || '')
                     && !c.classList.contains('reference-solution')).length""")
    if unhidden:
        problems.append(f"{unhidden} solution cells are not collapsed behind a toggle")
    cells = page.locator("article div.cell.reference-solution")
    if cells.count() == 0:
        problems.append("exercise page without any collapsed reference solution")
    for i in range(cells.count()):
        cell = cells.nth(i)
        output = cell.locator("details .cell_output")
        if output.count() == 0:
            problems.append(f"solution {i + 1}: no hidden output to reveal")
            continue
        if output.first.is_visible():
            problems.append(f"solution {i + 1} is visible before its toggle is clicked")
            continue
        cell.locator("details > summary").first.click()
        try:
            output.first.wait_for(state="visible", timeout=5000)
        except Exception:
            problems.append(f"solution {i + 1} is still hidden after its toggle was clicked")
            continue
        if not re.search(r"\b(def|class)\s+\w+", output.first.inner_text()):
            problems.append(f"solution {i + 1} shows no code after the click")
        elif screenshot and i == 0:
            page.wait_for_timeout(500)  # the toggle's fade-in
            cell.screenshot(path=str(SCREENSHOTS / f"{screenshot}-solution-open.png"))
    return cells.count()


def search_results(page, base: str, term: str) -> list[str]:
    """The pages (docnames) the site's own search lists for `term`."""
    page.goto(f"{base}search.html?q={term}", wait_until="load")
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results .search-summary, #search-results p');"
        " return s && /found|did not match/i.test(s.textContent); }",
        timeout=20000,
    )
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.href)")
    return [urlsplit(h).path.lstrip("/").removesuffix(".html") for h in hrefs]


def search_term(title: str) -> str:
    """A distinctive word of a page title (the longest word of 5+ letters)."""
    words = [w for w in re.findall(r"[A-Za-z]{5,}", title) if w.lower() not in {"exercises", "exercise"}]
    if not words:
        raise ValueError(f"no search term in title {title!r}")
    return max(words, key=len).lower()


# --- fixtures of the browser tests (a plugin of the root conftest: every test module sees them) --

@pytest.fixture(scope="module")
def site():
    """The book, built once per run (site_build), or the test fails with the build's problems."""
    result = site_build()
    if result.returncode != 0:
        pytest.fail("the book does not build (see test_site.py):\n" + "\n".join(result.problems[-20:]))
    return result


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: apt-get install -y chromium (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(site):
    with SiteServer(site.html) as running:
        yield running
