"""Checks of a built book site, shared by the browser tests (and usable on any built folder).

Everything here takes a Playwright `Page` (or a folder) and returns a list of problems, empty when
the check passes, so that a test can assert on it and a negative test can assert it is non-empty.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
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
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
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
    return result["total"], [f"broken figure image {b['src']} (figure #{b['figure']})" for b in result["broken"]]


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="load")
    # Give deferred scripts (theme, MathJax typesetting) a moment to run and report errors.
    page.wait_for_load_state("networkidle")
