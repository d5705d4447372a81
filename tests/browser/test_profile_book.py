"""A book built on another profile than the testbed (`make book-tiny`, or a paper build): every
chapter is there and executed, and the methods table has one column per benchmark of the profile
under its name in the papers. Each check also runs on a damaged copy, to show that it can fail."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin

import pytest

from vtr.chapters.tables import BENCHMARK_COLUMNS

from .helpers import open_page, serve, toc_docnames

pytestmark = pytest.mark.browser

METHODS_PAGE = "notebooks/05-psigmoid.html"
_HEADERS_JS = """() => Array.from(document.querySelectorAll('table')).map(
    t => Array.from(t.querySelectorAll('thead th')).map(th => th.textContent.trim()))"""


@pytest.fixture(scope="session")
def profile_site(profile):
    if profile == "testbed":
        pytest.skip("a check of a book built on another profile than the testbed")
    return profile


def benchmarks_of(profile: str) -> list[str]:
    """The benchmarks of the profile the site was built on (the tiny one holds every benchmark)."""
    from vtr.benchmarks import MODULES
    from vtr.experiments import profiles

    return list(MODULES) if profile == "tiny" else list(profiles.load().benchmarks)


def execution_problems(root: Path) -> list[str]:
    """Every chapter of the table of contents built and executed without error."""
    rows = {r["docname"]: r for r in json.loads((root / "exec-times.json").read_text())["chapters"]}
    problems = []
    for doc in toc_docnames():
        if not doc.startswith("notebooks/"):
            continue
        if not (root / f"{doc}.html").is_file():
            problems.append(f"{doc}: no page")
        elif doc not in rows or not rows[doc].get("succeeded"):
            problems.append(f"{doc}: not executed successfully ({rows.get(doc)})")
    return problems


def methods_table_problems(page, benchmarks: list[str]) -> list[str]:
    """A table on the methods page with every benchmark column, the average and "% of unpruned"."""
    wanted = [BENCHMARK_COLUMNS[b] for b in benchmarks] + ["average", "% of unpruned"]
    tables = page.evaluate(_HEADERS_JS)
    if any(all(c in headers for c in wanted) for headers in tables):
        return []
    return [f"{METHODS_PAGE}: no table with the columns {wanted}; tables have {tables}"]


def test_every_chapter_is_built_and_executed(site_root, profile_site):
    problems = execution_problems(site_root)
    assert not problems, "\n".join(problems)


def test_the_execution_check_reports_a_failed_chapter(site_copy, profile_site):
    path = site_copy / "exec-times.json"
    data = json.loads(path.read_text())
    data["chapters"][1]["succeeded"] = False
    path.write_text(json.dumps(data))
    assert any("not executed" in p for p in execution_problems(site_copy))


def test_the_methods_table_has_a_column_per_benchmark(page, site_url, profile_site):
    open_page(page, urljoin(site_url, METHODS_PAGE))
    problems = methods_table_problems(page, benchmarks_of(profile_site))
    assert not problems, "\n".join(problems)


def test_the_methods_check_reports_a_missing_benchmark(page, site_copy, profile_site):
    html = (site_copy / METHODS_PAGE).read_text()
    (site_copy / METHODS_PAGE).write_text(html.replace(f"<p>{BENCHMARK_COLUMNS['gqa']}</p>", "<p>gqa?</p>"))
    with serve(site_copy) as url:
        open_page(page, urljoin(url, METHODS_PAGE))
        assert methods_table_problems(page, benchmarks_of(profile_site))
