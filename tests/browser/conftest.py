"""Fixtures of the browser tests: the built site, a local HTTP server for it, headless Chromium."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .helpers import DEFAULT_HTML, serve

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make chromium` installs it)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def html_root() -> Path:
    """The built site under test: $VTR_BOOK_HTML, else the smoke build of `make book-smoke`."""
    return Path(os.environ.get("VTR_BOOK_HTML") or DEFAULT_HTML).resolve()


@pytest.fixture(scope="session")
def site_root() -> Path:
    root = html_root()
    if not (root / "index.html").is_file():
        pytest.fail(f"no built book at {root}: run `make book-smoke` (or set VTR_BOOK_HTML)")
    return root


def built_profile(root: Path) -> str:
    """The profile the site was built on (`exec-times.json`, written by book/_ext/vtr_notebooks.py)."""
    import json

    path = root / "exec-times.json"
    return json.loads(path.read_text()).get("profile", "testbed") if path.is_file() else "testbed"


@pytest.fixture(scope="session")
def profile(site_root) -> str:
    return built_profile(site_root)


@pytest.fixture(scope="session")
def testbed_site(profile):
    """Skip a check of the testbed book's own tables and claims on another profile's build."""
    if profile != "testbed":
        pytest.skip(f"a check of the testbed build (this site was built on the {profile} profile)")


@pytest.fixture(scope="session")
def site_url(site_root):
    with serve(site_root) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def site_copy(site_root, tmp_path) -> Path:
    """A throw-away copy of the built site, for tests that break it on purpose."""
    dest = tmp_path / "html"
    shutil.copytree(site_root, dest)
    return dest
