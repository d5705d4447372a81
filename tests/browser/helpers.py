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
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlsplit

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


# Ready means: every script ran (the load event), web fonts are in, and MathJax (on pages with
# mathematics) has typeset. Waiting for these is deterministic; "networkidle" (500 ms without
# requests) is not, and timed out on a loaded CI machine.
_READY_JS = """
async () => {
  await document.fonts.ready;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
}
"""
_REFRESH = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.IGNORECASE)


def open_page(page, url: str) -> None:
    """Load `url` and wait until it is ready to be read; a timeout names the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        # index.html is a meta refresh to the root page: judge the page it lands on. The source is
        # read beside the browser, since a page that refreshed no longer has its body.
        try:
            with urllib.request.urlopen(url) as source:
                refresh = _REFRESH.search(source.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError:
            refresh = None  # the browser meets the same error, and PageWatch reports it
        page.goto(url, wait_until="load")
        if refresh:
            page.wait_for_url(urljoin(url, refresh.group(1)), wait_until="load")
        page.evaluate(_READY_JS)
    except PlaywrightTimeout as err:
        raise AssertionError(f"{url} did not finish loading: {err.message.splitlines()[0]}") from None


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


# ------------------------------------------------------------------------------- pages as read
# Checks of what a reader sees on a page at an ordinary window (the tests use 1400 x 900): tables
# that fit or are built to scroll, every table captioned and numbered, no raw pandas or Python
# output, no markup left in the text, counts as integers, no paths of the machine that built the
# book, images described, one name per method. Each returns a list of problems, empty when clean.
READING_VIEWPORT = {"width": 1400, "height": 900}

_TABLE_FIT_JS = """
() => {
  const article = document.querySelector('article');
  if (!article) return [];
  const column = article.clientWidth;   // the content column
  const out = [];
  article.querySelectorAll('table').forEach((t, i) => {
    const width = Math.max(t.scrollWidth, t.getBoundingClientRect().width);
    if (width <= column + 1) return;   // fits
    let el = t.parentElement, scroller = null;
    while (el && el !== article) {
      const o = getComputedStyle(el).overflowX;
      if (o === 'auto' || o === 'scroll') { scroller = el; break; }
      el = el.parentElement;
    }
    const first = t.querySelector('tbody tr > :first-child, tr > :first-child');
    const frozen = first !== null && getComputedStyle(first).position === 'sticky';
    const fits = scroller !== null && scroller.getBoundingClientRect().width <= column + 1;
    // the caption's text must stay inside the scrolling box's visible width, not scroll with the table
    const text = t.querySelector(':scope > caption');
    let captionFits = true;
    if (fits && text) {
      const range = document.createRange();
      range.selectNodeContents(text);
      captionFits = range.getBoundingClientRect().right <= scroller.getBoundingClientRect().right + 1;
    }
    if (!(fits && frozen && captionFits)) {
      const cap = t.querySelector('caption .caption-number');
      out.push({id: t.id || '', caption: cap ? cap.textContent.trim() : '', n: i + 1,
                width: Math.round(width), column: Math.round(column),
                why: !scroller ? 'no scrolling box' : (!fits ? 'its scrolling box overflows too'
                     : (!frozen ? 'its first column is not frozen'
                                : 'its caption runs past the scrolling box'))});
    }
  });
  return out;
}
"""


def table_fit_problems(page, where: str) -> list[str]:
    """A table wider than the content column must be designed to scroll: inside a box with
    overflow-x auto/scroll that fits the column, with a frozen (position: sticky) first column,
    so that the column naming each row stays in view while the rest scrolls, and a caption whose
    text stays within the box's visible width."""
    out = []
    for t in page.evaluate(_TABLE_FIT_JS):
        name = t["caption"] or (f"#{t['id']}" if t["id"] else f"table {t['n']}")
        out.append(f"{where}: {name} is {t['width']} px wide in a {t['column']} px column "
                   f"({t['why']})")
    return out


_ALL_TABLES_JS = """
() => Array.from(document.querySelectorAll('article table')).filter(
    t => !t.closest('.vtr-artefact-bibtex') && !t.classList.contains('indextable')
         && !t.closest('table.highlighttable') && !t.closest(EXEMPT)).map((t, i) => {
  const cap = t.querySelector(':scope > caption');
  const num = cap ? cap.querySelector('.caption-number') : null;
  const text = cap ? cap.querySelector('.caption-text') : null;
  const head = Array.from(t.querySelectorAll('thead tr:first-child > *')).map(c => c.textContent.trim());
  const first = Array.from(t.querySelectorAll('tbody tr')).map(r => {
    const c = r.querySelector(':scope > th, :scope > td');
    return c ? c.textContent.trim() : '';
  });
  return {n: i + 1, id: t.id || '', number: num ? num.textContent.trim() : '',
          caption: text ? text.textContent.trim() : (cap ? cap.textContent.trim() : ''),
          in_output: t.closest('div.cell_output') !== null,
          dataframe: t.classList.contains('dataframe'), head: head, first: first,
          start: t.textContent.trim().slice(0, 60)};
})
"""


# Tables a reader sees that cannot carry a number, each with the reason (selector -> reason):
UNNUMBERED_TABLES = {
    # book/_ext/vtr_notebooks.py: built when the page is written, after Sphinx numbered the tables
    ".vtr-exec-table": "myst-nb's execution report (chapter 0), introduced by the page's prose",
}


def _tables(page) -> list[dict]:
    exempt = ", ".join(UNNUMBERED_TABLES) or ":not(*)"
    return page.evaluate(_ALL_TABLES_JS.replace("EXEMPT", repr(exempt)))


def _table_name(t: dict) -> str:
    return t["number"] or (f"#{t['id']}" if t["id"] else f"table {t['n']} ({t['start'][:40]!r})")


def uncaptioned_table_problems(page, where: str) -> list[str]:
    """Every table a reader sees is numbered ("Table N") and captioned, whatever made it."""
    out = []
    for t in _tables(page):
        if not re.fullmatch(r"Table \d+(\.\d+)*", t["number"]):
            out.append(f"{where}: {_table_name(t)} has no number")
        elif not t["caption"]:
            out.append(f"{where}: {_table_name(t)} has no caption")
    return out


def index_column_problems(page, where: str) -> list[str]:
    """No pandas output in the page: a table of pandas' `dataframe` class, or one whose header
    starts with an empty cell over a first column 0, 1, ..., N (a DataFrame's default index)."""
    out = []
    for t in _tables(page):
        counting = (len(t["first"]) >= 1 and t["first"] == [str(i) for i in range(len(t["first"]))])
        blank_corner = bool(t["head"]) and t["head"][0] == ""
        if t["dataframe"]:
            out.append(f"{where}: {_table_name(t)} is pandas output (class dataframe)")
        elif blank_corner and counting:
            out.append(f"{where}: {_table_name(t)} shows a 0..{len(t['first']) - 1} index column")
    return out


# What the reader reads: the article's rendered text without code (inline code, listings, code
# cells' sources), math, BibTeX entries and file labels, where identifiers and markup belong.
_READER_TEXT_JS = """
(printed) => {
  const article = document.querySelector('article');
  if (!article) return {text: '', outputs: []};
  const skip = (printed ? 'pre:not(div.cell_output pre), ' : 'pre, ')
             + 'script, style, code, kbd, samp, mjx-container, '
             + '.MathJax, div.cell_input, .vtr-artefact-bibtex, .vtr-artefact-label, a.vtr-download, '
             + 'a.headerlink, .vtr-artefact-files';
  const clone = article.cloneNode(true);
  clone.querySelectorAll(skip).forEach(el => el.replaceWith(document.createTextNode(' ')));
  clone.style.position = 'absolute';
  clone.style.left = '-100000px';
  clone.style.top = '0';
  clone.style.width = article.clientWidth + 'px';
  document.body.appendChild(clone);
  const text = clone.innerText;
  clone.remove();
  const outputs = Array.from(article.querySelectorAll('div.cell_output')).map(o => o.innerText);
  return {text: text, outputs: outputs};
}
"""


def reader_text(page, printed: bool = True) -> str:
    """The article's text as a reader sees it, code and math left out; `printed`: with what code
    cells printed (plain-text outputs), else without it (a printed command is code)."""
    return page.evaluate(_READER_TEXT_JS, printed)["text"]


def _page_text_with_outputs(page) -> str:
    got = page.evaluate(_READER_TEXT_JS, True)
    return got["text"] + "\n" + "\n".join(got["outputs"])


def _hits(patterns, text: str, where: str, what: str, limit: int = 20) -> list[str]:
    out = []
    for pattern in patterns:
        for m in re.finditer(pattern, text):
            start, end = max(0, m.start() - 30), min(len(text), m.end() + 30)
            context = " ".join(text[start:end].split())
            out.append(f"{where}: {what} {m.group(0)!r} in {context!r}")
    return sorted(set(out))[:limit] + ([f"{where}: ... and more {what}"] if len(set(out)) > limit else [])


# Python's own printing of values: a dict or list literal, a missing value, a float printed to
# full precision (more than 6 decimals).
PYTHON_REPRS = (
    r"\{'[\w .-]+':",                               # a dict literal {'csv': ...
    r"\[-?\d+(?:\.\d+)?(?:e-?\d+)?, -?\d+(?:\.\d+)?(?:e-?\d+)?",   # a list of numbers [0.93, 1.12]
    r"\[\s*'[^']*',",                               # a list of strings ['a', ...
    r"(?<![\w-])(?:NaN|nan|None)(?![\w-])",         # missing values as pandas / Python print them
    r"(?<![\w.])-?\d+\.\d{7,}",                     # 0.1111111111111111
)


def python_repr_problems(page, where: str) -> list[str]:
    """No Python reprs where a reader reads (cell outputs, glued text, tables): dict or list
    literals, NaN / nan / None, floats with more than 6 decimals."""
    return _hits(PYTHON_REPRS, _page_text_with_outputs(page), where, "Python repr")


# Markdown that was not parsed: emphasis, strong or inline-code markers in the rendered text.
MARKDOWN_MARKERS = (
    r"(?<![\w*])\*(?![\s*])[^*\n]{1,80}(?<![\s*])\*(?![\w*])",   # *word*
    r"\*\*",                                                   # ** anywhere
    r"`[^`\n]{1,80}`",                                         # `code`
)


def markdown_marker_problems(page, where: str) -> list[str]:
    """No literal markdown markers (`*word*`, `**`, backticks) in the rendered text outside code."""
    return _hits(MARKDOWN_MARKERS, reader_text(page), where, "markdown marker")


# A count printed as a float: "144.0 vision tokens" in a sentence, "batch 16.0" in a table row
# (its cells read across, tab-separated). A signed value ("+0.0 points") is a difference, not a count.
COUNT_NOUNS = (r"(?:tokens?|questions?|layers?|images?|samples?|GPUs?|gpus?|heads?|seeds?|steps?|runs?|"
               r"rows?|patches|answers?)")
COUNT_LABELS = r"(?:batch(?: size)?|n_\w+|GPUs|gpus|seeds|" + COUNT_NOUNS + r")"
FLOAT_COUNTS = (
    r"(?<![\w.+-])\d+\.0 (?:[A-Za-z-]+ )?" + COUNT_NOUNS + r"(?![\w-])",   # 144.0 vision tokens
    r"(?<![\w-])" + COUNT_LABELS + r"\t+\d+\.0(?![\d%])",            # batch<tab>16.0
)


def float_count_problems(page, where: str) -> list[str]:
    """No integer printed as a float: "144.0 vision tokens", "batch 16.0"."""
    return _hits(FLOAT_COUNTS, _page_text_with_outputs(page), where, "count printed as a float")


ABSOLUTE_PATHS = (r"(?<![\w.~-])/(?:tmp|work|home|root)/[^\s'\"]*",)


def absolute_path_problems(page, where: str) -> list[str]:
    """No absolute path of the machine that built the book (/tmp/, /work/, /home/, /root/) in the
    page's text, code cells' outputs included."""
    text = page.evaluate("() => { const a = document.querySelector('article');"
                         " return a ? a.innerText : ''; }")
    outputs = page.evaluate(_READER_TEXT_JS, True)["outputs"]
    return _hits(ABSOLUTE_PATHS, text + "\n" + "\n".join(outputs), where, "absolute path")


_IMAGES_JS = """
() => Array.from(document.querySelectorAll('article img')).map(
    img => ({src: img.getAttribute('src') || '', alt: img.getAttribute('alt')}))
"""


def image_alt_problems(page, where: str) -> list[str]:
    """Every image has alt text that describes it: not missing, not empty, not a file name (the
    hashed names myst-nb gives glued figures, or the image's own file name)."""
    out = []
    for img in page.evaluate(_IMAGES_JS):
        alt = (img["alt"] or "").strip()
        base = img["src"].rsplit("/", 1)[-1]
        if not alt:
            out.append(f"{where}: image {base} has no alt text")
        elif (alt.rsplit("/", 1)[-1] == base or re.fullmatch(r"[\w./-]*[0-9a-f]{16,}\.\w+", alt)
              or re.fullmatch(r"[\w./-]+\.(?:png|svg|jpe?g|gif)", alt)):
            out.append(f"{where}: image {base} has a file name as alt text ({alt[:60]!r})")
    return out


@functools.lru_cache(maxsize=1)
def _method_names() -> tuple[tuple[str, str], ...]:
    """(code name, display name) of the methods whose code name a reader must not see: those that
    differ from their display name and are not ordinary English words."""
    import sys

    sys.path.insert(0, str(REPO))
    from vtr.catalogue import METHODS

    english = {"full", "random", "uniform", "pool", "downsample"}
    return tuple((m.name, m.display) for m in METHODS
                 if m.name != m.display and m.name not in english)


# Other names the field uses for a method the book calls by its catalogue name.
METHOD_ALIASES = {"PyramidDrop": (r"PDrop", r"P-Drop", r"Pdrop")}


def method_name_problems(page, where: str) -> list[str]:
    """One name per method: no code name of vtr/catalogue.py ("prumerge_plus", "psigmoid") in the
    text outside code (a printed command line counts as code), and no other spelling of a display
    name (PDrop for PyramidDrop)."""
    text = reader_text(page, printed=False)
    patterns = [rf"(?<![\w-]){re.escape(name)}(?![\w-])" for name, _ in _method_names()]
    patterns += [rf"(?<![\w-]){alias}(?![\w-])" for aliases in METHOD_ALIASES.values()
                 for alias in aliases]
    return _hits(patterns, text, where, "method name")


# name -> check, for the tests and for a report of a whole site
READING_CHECKS = {
    "table-fit": table_fit_problems,
    "table-caption": uncaptioned_table_problems,
    "index-column": index_column_problems,
    "python-repr": python_repr_problems,
    "markdown": markdown_marker_problems,
    "float-count": float_count_problems,
    "absolute-path": absolute_path_problems,
    "image-alt": image_alt_problems,
    "method-name": method_name_problems,
}
