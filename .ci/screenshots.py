"""Screenshots of built pages as a reader sees them: headless Chromium at a 1400 x 900 window (the
browser checks' reading viewport), each page's first screen and its whole length, as PNG files.

    python .ci/screenshots.py [--site book/_build/html] [--out screenshots] [PAGE ...]

PAGE defaults to the introduction and chapters 4, 5 and 8. Needs the browser tests' Chromium
(`make chromium`); run from the repository root with the venv's python.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the path above first)
from tests.browser.helpers import READING_VIEWPORT, open_page, serve  # noqa: E402

PAGES = ["notebooks/01-introduction.html", "notebooks/04-gsearch.html", "notebooks/05-psigmoid.html",
         "notebooks/08-efficiency.html"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=PAGES)
    ap.add_argument("--site", type=Path, default=ROOT / "book" / "_build" / "html")
    ap.add_argument("--out", type=Path, default=Path("screenshots"))
    args = ap.parse_args()
    if not (args.site / "index.html").is_file():
        sys.exit(f"no built book at {args.site}: run `make book` (or pass --site)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with serve(args.site) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport=READING_VIEWPORT).new_page()
        for path in args.pages:
            open_page(page, urljoin(url, path))
            stem = Path(path).stem
            page.screenshot(path=args.out / f"{stem}-first-screen.png")
            page.screenshot(path=args.out / f"{stem}-page.png", full_page=True)
            scroll = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            print(f"{path}: {args.out / stem}-*.png; page wider than the window by {scroll} px")
        browser.close()


if __name__ == "__main__":
    main()
