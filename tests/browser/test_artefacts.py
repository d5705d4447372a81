"""The book's citable artefacts, in headless Chromium: the "Figures and tables" page lists every
labelled figure and table of the built pages with working downloads, labelled tables are numbered
and captioned, wide tables scroll, chapters offer their executed notebook and source, and code
cells start collapsed behind a toggle. Each check is also run on a damaged copy of the site, to
show that it can fail.
"""
from __future__ import annotations

import csv
import io
import json
from urllib.parse import urljoin, urlsplit

import pytest

from .helpers import (LISTING, PageWatch, code_cell_problems, discover_pages, listing_entries,
                        listing_problems, open_page, page_artefacts, serve, stray_repr_problems,
                        table_caption_problems, toc_docnames, wide_table_problems)

pytestmark = pytest.mark.browser

CODE_PAGE = "notebooks/00-book-check.html"  # has visible code cells and a glue:table


def chapter_pages() -> list[str]:
    return [f"{d}.html" for d in toc_docnames() if d.startswith("notebooks/")]


def _scan(browser, url: str, pages: list[str]) -> dict[str, list[dict]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        out = {}
        for path in pages:
            open_page(page, urljoin(url, path))
            landed = urlsplit(page.url).path.lstrip("/")  # index.html redirects to the root page
            if landed not in out:
                out[landed] = page_artefacts(page)
        return out
    finally:
        context.close()


@pytest.fixture(scope="session")
def built_artefacts(browser, site_root, site_url) -> dict[str, list[dict]]:
    """page path -> its labelled figures and tables (the listing page itself left out)."""
    pages = [p for p in discover_pages(site_root) if p != LISTING]
    return _scan(browser, site_url, pages)


def test_index_page_loads(page, site_url):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, "index.html"))
    page.wait_for_selector("article h1")
    assert page.title()
    assert not watch.problems, "\n".join(watch.problems)


# --------------------------------------------------------------------------- the listing
def test_listing_lists_every_label(page, site_url, built_artefacts):
    total = sum(len(v) for v in built_artefacts.values())
    kinds = {a["kind"] for v in built_artefacts.values() for a in v}
    assert total > 0 and kinds == {"figure", "table"}, \
        f"the book should have labelled figures and tables; found {kinds or 'none'}"
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, LISTING))
    entries = listing_entries(page)
    problems = listing_problems(entries, built_artefacts)
    assert not problems, "\n".join(problems)
    assert not watch.problems, "\n".join(watch.problems)


def test_listing_check_reports_a_missing_entry(page, site_copy, built_artefacts):
    listing = site_copy / LISTING
    html = listing.read_text()
    start = html.index('<div class="vtr-artefact ')
    removed = html[start:].split('id="artefact-', 1)[1].split('"', 1)[0]
    # drop the first entry's box (up to the next entry or the end of the listing)
    end = html.find('<div class="vtr-artefact ', start + 1)
    assert end > start, "the listing has a single entry: plant a second one to test this"
    listing.write_text(html[:start] + html[end:])
    with serve(site_copy) as url:
        open_page(page, urljoin(url, LISTING))
        problems = listing_problems(listing_entries(page), built_artefacts)
    assert any(removed in p and "not on the Figures and tables page" in p for p in problems), problems


# --------------------------------------------------------------------------- downloads
def _get(page, url: str):
    response = page.request.get(url)
    assert response.ok, f"HTTP {response.status}: {url}"
    return response


def test_downloads_resolve(page, site_url, built_artefacts):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, LISTING))
    entries = listing_entries(page)
    links = [(e, d) for e in entries for d in e["downloads"]]
    assert {d["text"] for _, d in links} >= {"PNG", "SVG", "CSV"}
    for e, d in links:
        body = _get(page, d["href"]).body()
        assert body, f"empty download {d['href']}"
        if d["text"] == "PNG":
            assert body[:8] == b"\x89PNG\r\n\x1a\n", f"{d['href']} is not a PNG"
        elif d["text"] == "SVG":
            assert b"<svg" in body[:2000], f"{d['href']} is not an SVG"
    # follow one PNG link in the browser itself
    png = next(d["href"] for _, d in links if d["text"] == "PNG")
    response = page.goto(png)
    assert response.ok and response.headers.get("content-type", "").startswith("image/png")
    # the CSV of one table holds that table: same header as on its page, one row per row
    entry, link = next((e, d) for e, d in links if d["text"] == "CSV")
    rows = list(csv.reader(io.StringIO(_get(page, link["href"]).text())))
    open_page(page, urljoin(urljoin(site_url, LISTING), entry["href"]))
    table = page.locator(f"table[id='{entry['label']}']")
    header = [t.strip() for t in table.locator("thead th").all_inner_texts()]
    assert rows[0] == header, f"{link['href']}: header {rows[0]} vs the page's {header}"
    assert len(rows) - 1 == table.locator("tbody tr").count()
    assert not watch.problems, "\n".join(watch.problems)


@pytest.mark.parametrize("page_path", chapter_pages())
def test_chapter_offers_notebook_and_source(page, site_url, page_path):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, page_path))
    title = page.locator("article h1").first.inner_text().strip().rstrip("#").strip()
    ipynb = page.locator("a.btn-download-notebook-button")
    source = page.locator("a.btn-download-source-button")
    assert ipynb.count() == 1, f"{page_path} offers no .ipynb download"
    assert source.count() == 1, f"{page_path} offers no source download"
    nb_url = urljoin(page.url, ipynb.get_attribute("href"))
    md_url = urljoin(page.url, source.get_attribute("href"))
    assert nb_url.endswith(".ipynb") and md_url.endswith(".md"), (nb_url, md_url)
    nb = json.loads(_get(page, nb_url).text())
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(isinstance(c.get("execution_count"), int) for c in code), \
        f"{nb_url} is not the executed notebook (code cells without an execution count)"
    md = _get(page, md_url).text()
    assert md.startswith("---") and "jupytext" in md[:500], f"{md_url} is not the MyST source"
    assert title and title in md, f"{md_url} does not hold the page's title {title!r}"
    assert not watch.problems, "\n".join(watch.problems)


def test_download_check_reports_a_missing_notebook(page, site_copy):
    path = chapter_pages()[0]
    (site_copy / "_sources" / path.replace(".html", ".ipynb")).unlink()
    with serve(site_copy) as url:
        open_page(page, urljoin(url, path))
        href = urljoin(page.url, page.locator("a.btn-download-notebook-button").get_attribute("href"))
        assert page.request.get(href).status == 404


# --------------------------------------------------------------------------- tables
def test_labelled_tables_have_caption_and_number(built_artefacts):
    tables = [a for v in built_artefacts.values() for a in v if a["kind"] == "table"]
    assert tables, "no labelled table in the book: the check would be vacuous"
    problems = [p for path, items in built_artefacts.items() for p in table_caption_problems(items, path)]
    assert not problems, "\n".join(problems)


def test_table_check_reports_a_missing_number(page, site_copy, built_artefacts):
    path, label = next((p, a["id"]) for p, v in built_artefacts.items() for a in v if a["kind"] == "table")
    html = (site_copy / path).read_text()
    start = html.index(f'id="{label}"')
    number = html.index('<span class="caption-number">', start)
    close = html.index("</span>", number) + len("</span>")
    (site_copy / path).write_text(html[:number] + html[close:])
    with serve(site_copy) as url:
        open_page(page, urljoin(url, path))
        problems = table_caption_problems(page_artefacts(page), path)
    assert any(label in p and "no number" in p for p in problems), problems


@pytest.fixture
def narrow_page(browser):
    context = browser.new_context(viewport={"width": 700, "height": 900})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def test_wide_tables_scroll(narrow_page, site_root, site_url):
    problems = []
    for path in discover_pages(site_root):
        open_page(narrow_page, urljoin(site_url, path))
        problems += wide_table_problems(narrow_page, path)
    assert not problems, "\n".join(problems)


def test_wide_table_check_reports_an_overflow(narrow_page, site_copy):
    path = CODE_PAGE
    html = (site_copy / path).read_text()
    planted = ('<table id="planted-wide"><tr><td style="white-space:nowrap">'
               + "wide " * 400 + "</td></tr></table>")
    (site_copy / path).write_text(html.replace("</article>", planted + "</article>", 1))
    with serve(site_copy) as url:
        open_page(narrow_page, urljoin(url, path))
        problems = wide_table_problems(narrow_page, path)
    assert any("planted-wide" in p for p in problems), problems


# --------------------------------------------------------------------------- code cells
def test_code_cells_start_collapsed(page, site_url):
    problems = []
    for path in chapter_pages():
        open_page(page, urljoin(site_url, path))
        problems += code_cell_problems(page, path)
    assert not problems, "\n".join(problems)


def test_code_cell_expands_and_collapses(page, site_url):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, CODE_PAGE))
    toggle = page.locator("article details.hide.above-input").first
    assert toggle.count() == 1, f"{CODE_PAGE} has no collapsed code cell"
    code = toggle.locator("div.cell_input")
    assert not code.is_visible()
    summary = toggle.locator("summary")
    assert summary.locator("p.collapsed").is_visible()
    summary.click()
    code.wait_for(state="visible")
    assert code.inner_text().strip(), "the expanded cell shows no code"
    assert summary.locator("p.expanded").is_visible()
    summary.click()
    code.wait_for(state="hidden")
    assert not watch.problems, "\n".join(watch.problems)


def test_code_cell_check_reports_open_code(page, site_copy):
    html = (site_copy / CODE_PAGE).read_text()
    assert '<details class="admonition hide above-input">' in html
    (site_copy / CODE_PAGE).write_text(html.replace('<details class="admonition hide above-input">',
                                                    '<details class="admonition hide above-input" open>', 1))
    with serve(site_copy) as url:
        open_page(page, urljoin(url, CODE_PAGE))
        problems = code_cell_problems(page, CODE_PAGE)
    assert len(problems) == 1, problems


# --------------------------------------------------------------------------- outputs
def test_no_stray_object_reprs(page, site_url):
    problems = []
    for path in chapter_pages():
        open_page(page, urljoin(site_url, path))
        problems += stray_repr_problems(page, path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("shown,found", [("&lt;Figure size 640x480 with 1 Axes&gt;", "Figure size"),
                                         ("Loading weights: 100%|██████████| 222/222", "100%|")],
                         ids=["figure repr", "progress bar"])
def test_repr_check_reports_stray_output(page, site_copy, shown, found):
    html = (site_copy / CODE_PAGE).read_text()
    planted = ('<div class="cell_output docutils container">'
               '<div class="output text_plain highlight-myst-ansi notranslate">'
               f'<div class="highlight"><pre><span></span>{shown}</pre></div></div></div>')
    (site_copy / CODE_PAGE).write_text(html.replace("</article>", planted + "</article>", 1))
    with serve(site_copy) as url:
        open_page(page, urljoin(url, CODE_PAGE))
        problems = stray_repr_problems(page, CODE_PAGE)
    assert any(found in p for p in problems), problems
