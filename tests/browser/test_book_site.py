"""The built book, in headless Chromium: every page loads cleanly, figures show, the intro's figure
reference lands on its figure, search finds words of the book. Runs on the smoke build by default
(`make test`), or on the folder in $VTR_BOOK_HTML, e.g. VTR_BOOK_HTML=book/_build/html.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from .conftest import html_root
from .helpers import PageWatch, discover_pages, figure_images, open_page, serve, toc_docnames

pytestmark = pytest.mark.browser

INTRO = "notebooks/01-introduction.html"  # the root page (headline table, cites the check figure)
SEARCH_WORD = "reproducibility"  # in the book's title and introduction
NONSENSE = "qzxvjkwplm"


def pytest_generate_tests(metafunc):
    if "page_path" in metafunc.fixturenames:
        root = html_root()
        pages = discover_pages(root) if root.is_dir() else []
        # No pages: one case that fails in `site_root` with a hint, rather than nothing collected.
        metafunc.parametrize("page_path", pages or ["index.html"])


def test_every_toc_entry_is_a_built_page(site_root):
    pages = set(discover_pages(site_root))
    missing = [d for d in toc_docnames() if f"{d}.html" not in pages]
    assert not missing, f"listed in book/_toc.yml but not built: {missing}"
    assert {"index.html", "search.html"} <= pages


def test_page_loads_without_errors(page, site_root, site_url, page_path):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, page_path))
    assert page.title(), f"{page_path} has no title"
    assert not watch.problems, f"{page_path}:\n" + "\n".join(watch.problems)


def test_figure_images_render(page, site_root, site_url):
    total, broken, watch = 0, [], PageWatch(page, site_url)
    for path in discover_pages(site_root):
        open_page(page, urljoin(site_url, path))
        n, bad = figure_images(page)
        total += n
        broken += [f"{path}: {b}" for b in bad]
    assert total > 0, "no <figure><img> anywhere in the book: the check would be vacuous"
    assert not broken, "\n".join(broken)
    assert not watch.problems, "\n".join(watch.problems)


def test_intro_figure_reference_lands_on_figure(page, site_url):
    watch = PageWatch(page, site_url)
    open_page(page, urljoin(site_url, INTRO))
    link = page.locator("a.reference.internal:has(span.std-numref)").first
    assert link.count() == 1, "the introduction has no {numref} link"
    href = link.get_attribute("href")
    fragment = urlsplit(href).fragment
    assert fragment, f"numref link without a fragment: {href}"
    assert link.inner_text().startswith("Figure "), link.inner_text()
    link.click()
    page.wait_for_url(lambda url: urlsplit(url).fragment == fragment)
    page.wait_for_load_state("load")
    target = page.locator(f"[id='{fragment}']")
    assert target.count() == 1, f"#{fragment} does not exist on {page.url}"
    is_figure = target.evaluate("el => el.tagName === 'FIGURE' || el.querySelector('figure') !== null")
    assert is_figure, f"#{fragment} is not a figure"
    assert target.locator("img").first.is_visible()
    assert target.locator("img").first.evaluate("img => img.naturalWidth") > 0
    assert not watch.problems, "\n".join(watch.problems)


def _search_hits(page, site_url, word):
    open_page(page, urljoin(site_url, f"search.html?q={word}"))
    # searchtools.js fills #search-results and then states how many pages matched.
    page.wait_for_function(
        "() => { const p = document.querySelector('#search-results > p');"
        " return p && p.textContent.trim().length > 0; }")
    return page.locator("#search-results ul.search > li").count()


def test_search_finds_a_word_of_the_book(page, site_url):
    watch = PageWatch(page, site_url)
    assert _search_hits(page, site_url, SEARCH_WORD) >= 1
    assert _search_hits(page, site_url, NONSENSE) == 0  # the count above is not always > 0
    assert not watch.problems, "\n".join(watch.problems)


# --------------------------------------------------------------------------- the checks can fail
def _first_figure_image(site_root: Path, page, site_url) -> tuple[str, str]:
    """(page path, image src) of the first figure image of the site."""
    for path in discover_pages(site_root):
        open_page(page, urljoin(site_url, path))
        src = page.evaluate("() => { const i = document.querySelector('figure img');"
                            " return i ? i.getAttribute('src') : null; }")
        if src:
            return path, src
    pytest.fail("no figure image in the site")


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_figure_check_reports_a_broken_image(page, site_root, site_url, site_copy, damage):
    path, src = _first_figure_image(site_root, page, site_url)
    image = (site_copy / path).parent / src
    assert image.is_file(), image
    if damage == "corrupt":
        image.write_bytes(b"this is not a PNG")
    else:
        image.unlink()
    with serve(site_copy) as broken_url:
        watch = PageWatch(page, broken_url)
        open_page(page, urljoin(broken_url, path))
        total, broken = figure_images(page)
    assert total >= 1
    assert any(src in b for b in broken), f"damaged {src} not reported: {broken}"
    if damage == "delete":  # the page watch notices the missing file too
        assert any("404" in p for p in watch.problems), watch.problems


def test_page_watch_reports_errors(page, site_copy):
    """A page with a console error, an uncaught exception, a missing file and a CDN script fails."""
    intro = site_copy / INTRO
    html = intro.read_text()
    injected = ('<script>console.error("planted error")</script>'
                '<script>throw new Error("planted exception")</script>'
                '<script src="_static/no-such-file.js"></script>'
                '<script src="https://cdn.invalid/lib.js"></script>')
    intro.write_text(html.replace("</body>", injected + "</body>", 1))
    with serve(site_copy) as url:
        watch = PageWatch(page, url)
        open_page(page, urljoin(url, INTRO))
    text = "\n".join(watch.problems)
    assert "planted error" in text
    assert "planted exception" in text
    assert "HTTP 404" in text and "no-such-file.js" in text
    assert "request to another host" in text and "cdn.invalid" in text
