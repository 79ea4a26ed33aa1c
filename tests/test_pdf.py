"""The book as a PDF (`make pdf`, tools/book_pdf.py): every page of the table of contents, in
reading order, under its title in the outline; figures embedded; maths typeset; offline."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from site_fixtures import CHROMIUM, ROOT, site_build, toc_docnames

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no Chromium")

spec = importlib.util.spec_from_file_location("book_pdf", ROOT / "tools" / "book_pdf.py")
book_pdf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_pdf)


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    site = site_build()
    assert site.returncode == 0, site.log[-2000:]
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    book_pdf.main([str(site.html), str(out)])
    return site.html, PdfReader(out)


def _title(html: Path, docname: str) -> str:
    text = (html / f"{docname}.html").read_text(encoding="utf-8")
    return book_pdf.page_title(re.search(r"<title>(.*?)</title>", text, re.S).group(1))


def test_the_outline_lists_every_page_in_reading_order(book):
    html, pdf = book
    outline = [item.title for item in pdf.outline]
    assert outline == [_title(html, d) for d in toc_docnames()]
    assert len(pdf.pages) >= 3 * len(outline)  # a chapter is several sheets


def test_each_outline_entry_opens_its_page(book):
    html, pdf = book
    starts = [pdf.get_destination_page_number(item) for item in pdf.outline]
    assert starts[0] == 0 and starts == sorted(set(starts))
    first = pdf.pages[starts[1]].extract_text()
    assert _title(html, toc_docnames()[1]).split()[0] in first


def test_figures_are_embedded(book):
    html, pdf = book
    figures = sum(
        len(re.findall(r'<img [^>]*src="[^"]*_images/', (html / f"{d}.html").read_text()))
        for d in toc_docnames()
    )
    images = sum(len(page.images) for page in pdf.pages)
    assert figures > 30 and images >= figures


def test_the_maths_is_typeset_not_left_as_tex(book):
    _, pdf = book
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "\\frac" not in text and "\\mathbb" not in text and "$$" not in text
    assert len(text) > 100_000


def test_a_missing_site_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="build the site first"):
        book_pdf.main([str(tmp_path), str(tmp_path / "book.pdf")])
