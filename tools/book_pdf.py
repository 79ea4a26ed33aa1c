"""The book as one PDF, printed from the built website (`make pdf`), offline.

Jupyter Book's own PDF builders download a browser or need LaTeX; the site already has what a
reader sees (figures, typeset maths, the course style), so this prints it with the system's
Chromium (Debian's, the one the browser tests use) and joins the pages with pypdf. The pages are
taken in reading order by following each page's "next" link from the root page; each becomes an
entry of the PDF's outline (its table of contents) under its own title.

    python tools/book_pdf.py _build/html _build/html/deep-learning-by-experiment.pdf
"""

from __future__ import annotations

import argparse
import html as html_lib
import io
import os
import sys
import time
from pathlib import Path

CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update"]
MATHJAX_DONE = "() => !window.MathJax || !MathJax.startup || MathJax.startup.promise"


def page_title(document_title: str) -> str:
    """A page's own title from the document's ("1. Deep networks &#8212; The Book")."""
    return html_lib.unescape(document_title).rsplit(" \u2014 ", 1)[0].strip()


def print_pages(html: Path) -> list[tuple[str, bytes]]:
    """(title, PDF bytes) of every page, from `html`/index.html along the "next" links."""
    from playwright.sync_api import sync_playwright

    if not (html / "index.html").is_file():
        raise SystemExit(f"error: {html}/index.html not found: build the site first (make book)")
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"error: no Chromium at {CHROMIUM}: apt-get install -y chromium, "
                         "or set COURSE_CHROMIUM")
    pages: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    url = (html / "index.html").resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        while url and url not in seen:
            seen.add(url)
            page.goto(url, wait_until="load")
            page.wait_for_function(MATHJAX_DONE)
            page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.emulate_media(media="print")
            title = page_title(page.title())
            pages.append((title, page.pdf(
                format="A4", print_background=True, outline=False,
                margin={"top": "14mm", "bottom": "14mm", "left": "12mm", "right": "12mm"},
            )))
            page.emulate_media(media="screen")
            after = page.locator("a.right-next")
            url = after.first.evaluate("a => a.href") if after.count() else ""
        browser.close()
    return pages


def join(pages: list[tuple[str, bytes]], title: str) -> bytes:
    """One PDF of `pages`, an outline entry per page at its first sheet."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for name, data in pages:
        writer.append(PdfReader(io.BytesIO(data)), outline_item=name)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built website (_build/html)")
    parser.add_argument("pdf", type=Path, help="the PDF to write")
    parser.add_argument("--title", default="Deep Learning by Experiment")
    args = parser.parse_args(argv)
    started = time.monotonic()
    pages = print_pages(args.html)
    data = join(pages, args.title)
    args.pdf.parent.mkdir(parents=True, exist_ok=True)
    aside = args.pdf.with_name(args.pdf.name + ".part")
    aside.write_bytes(data)
    aside.replace(args.pdf)
    print(f"{args.pdf}: {len(pages)} pages of the site, {len(data) / 2**20:.1f} MB, "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
