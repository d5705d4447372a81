"""Checks of a built book site, shared by the browser tests (and usable on any built folder).

Everything here takes a Playwright `Page` (or a folder) and returns a list of problems, empty when
the check passes, so that a test can assert on it and a negative test can assert it is non-empty.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HTML = REPO / "book" / "_build_smoke" / "_build" / "html"  # `make book-smoke`
TOC = REPO / "book" / "_toc.yml"

# Folders of a Sphinx HTML build that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static", "_panels_static"}


# ------------------------------------------------------------------------------- the site on disk
def discover_pages(html_root: Path) -> list[str]:
    """Every HTML page of the build, as paths relative to `html_root` (index, genindex and search
    included): what the sidebar, the search index and the links can lead a reader to."""
    pages = []
    for path in sorted(html_root.rglob("*.html")):
        rel = path.relative_to(html_root)
        if not ASSET_DIRS.intersection(rel.parts[:-1]):
            pages.append(rel.as_posix())
    return pages


def toc_docnames(toc: Path = TOC) -> list[str]:
    """Docnames listed in the book's _toc.yml (root first), e.g. "notebooks/00-book-check"."""
    data = yaml.safe_load(toc.read_text())
    names = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]).rsplit(".", 1)[0] if node["file"].endswith((".md", ".ipynb"))
                             else str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in data.items() if k != "root"})
    return names


# ------------------------------------------------------------------------------- serving it
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # `format`: the base class's parameter name
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on a free local port; yields the base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ------------------------------------------------------------------------------- in the browser
class PageWatch:
    """Records what went wrong while a page loaded: console errors, uncaught exceptions, failed or
    non-2xx/3xx requests, and any request leaving the local server (the book must work offline;
    such requests are aborted so they fail fast and deterministically).

    Nothing is filtered: so far the built book produces no console noise at all. If a third-party
    message ever has to be tolerated, add a precise pattern here with the reason.
    """

    def __init__(self, page, base_url: str):
        self.page = page
        self.origin = urlsplit(base_url).netloc
        self.problems: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught exception: {exc}"))
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != self.origin:
            self.problems.append(f"request to another host (the book must be self-contained): {url}")
            route.abort()
        else:
            route.continue_()

    def _on_console(self, msg):
        if msg.type in ("error", "assert"):
            loc = msg.location or {}
            where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc else ""
            self.problems.append(f"console {msg.type}: {msg.text}{where}")

    def _on_failed(self, request):
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _on_response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


_BROKEN_FIGURE_IMAGES_JS = """
async () => {
  const imgs = Array.from(document.querySelectorAll('figure img'));
  // Load every figure image now (lazy ones too), then judge each by its decoded size.
  await Promise.all(imgs.map(img => { img.loading = 'eager'; return img.decode().catch(() => null); }));
  return {
    total: imgs.length,
    broken: imgs.filter(img => !(img.complete && img.naturalWidth > 0))
                .map(img => ({src: img.getAttribute('src'),
                              figure: (img.closest('figure') || {}).id || ''})),
  };
}
"""


def figure_images(page) -> tuple[int, list[str]]:
    """(number of <img> inside <figure> on the loaded page, descriptions of the broken ones).
    An image is broken when it did not decode to a positive natural width."""
    result = page.evaluate(_BROKEN_FIGURE_IMAGES_JS)
    return result["total"], [f"broken figure image {b['src']} (figure #{b['figure']})"
                             for b in result["broken"]]


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="load")
    # Give deferred scripts (theme, MathJax typesetting) a moment to run and report errors.
    page.wait_for_load_state("networkidle")


# ------------------------------------------------------------------------------- figures and tables
LISTING = "figures-and-tables.html"  # the "Figures and tables" page (book/figures-and-tables.md)

_ARTEFACTS_JS = """
() => Array.from(document.querySelectorAll('article figure[id], article table[id]')).map(el => {
  const cap = el.querySelector(':scope > figcaption, :scope > caption');
  const num = cap ? cap.querySelector('.caption-number') : null;
  const text = cap ? cap.querySelector('.caption-text') : null;
  return {kind: el.tagName === 'FIGURE' ? 'figure' : 'table', id: el.id,
          number: num ? num.textContent.trim() : '',
          caption: text ? text.textContent.trim() : ''};
})
"""


def page_artefacts(page) -> list[dict]:
    """The labelled figures and tables of the loaded page: kind, id (= label), number ("Table 2",
    "" when unnumbered) and caption text."""
    return page.evaluate(_ARTEFACTS_JS)


def table_caption_problems(artefacts: list[dict], where: str) -> list[str]:
    """A labelled table must carry a caption and a number ("Table N")."""
    problems = []
    for a in artefacts:
        if a["kind"] != "table":
            continue
        if not re.fullmatch(r"Table \d+(\.\d+)*", a["number"]):
            problems.append(f"{where}: table #{a['id']} has no number (caption number {a['number']!r})")
        if not a["caption"]:
            problems.append(f"{where}: table #{a['id']} has no caption")
    return problems


_LISTING_JS = """
() => Array.from(document.querySelectorAll('div.vtr-artefact')).map(box => {
  const link = box.querySelector('a.vtr-artefact-link');
  const label = box.querySelector('.vtr-artefact-label');
  return {id: box.id, label: label ? label.textContent.trim() : '',
          number: link ? link.textContent.trim() : '', href: link ? link.getAttribute('href') : '',
          caption: (box.querySelector('.vtr-artefact-caption') || {textContent: ''}).textContent.trim(),
          bibtex: (box.querySelector('.vtr-artefact-bibtex') || {textContent: ''}).textContent,
          downloads: Array.from(box.querySelectorAll('a.vtr-download')).map(
              a => ({text: a.textContent.trim(), href: a.href}))};
})
"""


def listing_entries(page) -> list[dict]:
    """The entries of the loaded "Figures and tables" page: label, number, link, caption, BibTeX
    text and download links (absolute URLs)."""
    return page.evaluate(_LISTING_JS)


def listing_problems(entries: list[dict], built: dict[str, list[dict]]) -> list[str]:
    """Compare the listing with the labelled figures and tables found on the built pages
    (`built`: page path -> page_artefacts). Every label must be listed once, under its number,
    linking to its page, with its files (PNG and SVG for a figure, CSV for a table) and a BibTeX
    entry naming the label."""
    problems = []
    found = {a["id"]: (path, a) for path, items in built.items() for a in items}
    listed = {}
    for e in entries:
        if e["label"] in listed:
            problems.append(f"label {e['label']!r} listed twice")
        listed[e["label"]] = e
    for label, (path, a) in sorted(found.items()):
        e = listed.get(label)
        if e is None:
            problems.append(f"{a['kind']} {label!r} of {path} is not on the Figures and tables page")
            continue
        if e["number"] != a["number"]:
            problems.append(f"{label!r}: listed as {e['number']!r}, its page says {a['number']!r}")
        target = urlsplit(e["href"])
        if target.fragment != label or not target.path.endswith(path.rsplit("/", 1)[-1]):
            problems.append(f"{label!r}: the listing links to {e['href']!r}, not {path}#{label}")
        want = {"PNG", "SVG"} if a["kind"] == "figure" else {"CSV"}
        have = {d["text"] for d in e["downloads"]}
        if have != want:
            problems.append(f"{label!r}: downloads {sorted(have)}, expected {sorted(want)}")
        for d in e["downloads"]:
            if not d["href"].endswith(f"/{label}.{d['text'].lower()}"):
                problems.append(f"{label!r}: {d['text']} link {d['href']} is not named by the label")
        if "@misc{" not in e["bibtex"] or label not in e["bibtex"]:
            problems.append(f"{label!r}: no BibTeX entry naming the label")
        if not e["caption"]:
            problems.append(f"{label!r}: listed without its caption")
    for label in sorted(set(listed) - set(found)):
        problems.append(f"listed label {label!r} is on no built page")
    return problems


# ------------------------------------------------------------------------------- code cells
_CODE_CELLS_JS = """
() => Array.from(document.querySelectorAll('article div.cell div.cell_input')).map(inp => {
  const cell = inp.closest('div.cell');
  const det = inp.closest('details');
  return {shown_by_tag: cell.classList.contains('tag_show-input'),
          in_toggle: det !== null && det.classList.contains('hide'),
          open: det !== null && det.open,
          visible: inp.checkVisibility({visibilityProperty: true})};
})
"""


def code_cell_problems(page, where: str) -> list[str]:
    """Every code cell's source must start collapsed behind a toggle (unless tagged show-input)."""
    cells = page.evaluate(_CODE_CELLS_JS)
    return [f"{where}: code cell {i + 1} is not collapsed behind a toggle"
            for i, c in enumerate(cells)
            if not c["shown_by_tag"] and (not c["in_toggle"] or c["open"] or c["visible"])]


_WIDE_TABLES_JS = """
() => {
  const article = document.querySelector('article');
  if (!article) return [];
  const right = article.getBoundingClientRect().right;
  const out = [];
  article.querySelectorAll('table').forEach((t, i) => {
    if (t.getBoundingClientRect().right <= right + 1) return;   // fits
    let el = t.parentElement, scroller = null;
    while (el && el !== article) {
      const o = getComputedStyle(el).overflowX;
      if (o === 'auto' || o === 'scroll') { scroller = el; break; }
      el = el.parentElement;
    }
    if (!scroller || scroller.getBoundingClientRect().right > right + 1)
      out.push((t.id ? '#' + t.id : 'table ' + (i + 1)) + ' overflows the page');
  });
  return out;
}
"""


def wide_table_problems(page, where: str) -> list[str]:
    """A table wider than the page's article must sit in a horizontally scrolling box that fits."""
    return [f"{where}: {p}" for p in page.evaluate(_WIDE_TABLES_JS)]


# Reprs of objects a cell returned by accident (a figure, axes, a path, anything "at 0x...") and
# progress bars (tqdm's "100%|####|", e.g. transformers loading weights): the output a reader sees
# should be a result, not Python's name for an object or a bar that filled while the page executed.
STRAY_REPRS = (
    r"<[A-Za-z_][\w.]* object at 0x[0-9a-fA-F]+>",
    r"<[\w.]+ at 0x[0-9a-fA-F]+>",
    r"<Figure size [^>]*>",
    r"<Axes: [^>]*>",
    r"\b(Posix|Windows)Path\('",
    r"\d+%\|[^|\n]*\|",
)

_OUTPUT_TEXT_JS = """
() => Array.from(document.querySelectorAll('article div.cell_output .output')).map(o => o.textContent)
"""


def stray_repr_problems(page, where: str) -> list[str]:
    problems = []
    for i, text in enumerate(page.evaluate(_OUTPUT_TEXT_JS)):
        for pattern in STRAY_REPRS:
            m = re.search(pattern, text)
            if m:
                problems.append(f"{where}: output {i + 1} shows stray output: {m.group(0)!r}")
                break
    return problems
