"""The papers' tables in their shape, as a reader finds them in the built book: the method
comparison (methods x task-family columns named after their benchmark, average, "% of unpruned",
cost and measured speed with its spread) on both testbeds, at the book's budgets, at SparseVLM's
and at matched decoder FLOPs, the main paper's Scenario I and
Scenario II tables, and DyVTE's tables, each numbered and captioned. The checks also run on a
damaged copy of the site, to show that they can fail.
"""
from __future__ import annotations

from urllib.parse import urljoin

import pytest

from vtr.chapters.tables import ANALOGUE

from .helpers import open_page, page_artefacts, serve, table_caption_problems

# the testbed book's labels and task-family columns (test_profile_book.py checks another profile's)
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("testbed_site")]

METHOD_COLUMNS = [*ANALOGUE.values(), "average", "% of unpruned", "decoder FLOPs %", "speedup",
                  "speedup range"]
# page -> {table label: header cells it must have}
TABLES = {
    "notebooks/05-psigmoid.html": {
        "tab-methods": METHOD_COLUMNS,
        "tab-methods-deep": METHOD_COLUMNS,
        # the field's budgets (SparseVLM's tokens per layer) and matched decoder FLOPs
        "tab-field-keep": METHOD_COLUMNS,
        "tab-field-keep-deep": METHOD_COLUMNS,
        "tab-field-flops": METHOD_COLUMNS,
        "tab-field-flops-deep": METHOD_COLUMNS,
        "tab-scenario2": ["layers", "budget", "P-Sigmoid - FastV", "lo", "hi"],
    },
    "notebooks/04-gsearch.html": {
        "tab-gsearch-testbeds": ["testbed", "decoder FLOPs %", "change (points)", "95% CI low", "95% CI high",
                                 "prefill speedup", "speedup range"],
    },
    "notebooks/07-dyvte.html": {
        "tab-dyvte": ["testbed", "overall", "FLOPs %", "speedup"],
        "tab-dyvte-exits": ["testbed", "seed", "most frequent exit"],
    },
    "notebooks/06-cls-knee.html": {
        "tab-cls-knee-variants": ["layers", "stage 1", "vision keep %", "change", "lo", "hi"],
    },
    # what later benchmark studies found, on both testbeds
    "notebooks/10-later-benchmarks.html": {
        "tab-later-verdicts": ["source", "claim", "paper", "8 layers: verdict", "16 layers: verdict"],
        "tab-later-random": ["budget", "method", "8 layers: minus random", "16 layers: vs random"],
        "tab-later-downsample": ["budget", "method", "8 layers: downsample minus method",
                                 "16 layers: tokens (downsample / method)"],
        "tab-later-families": ["model", "budget"],
        "tab-later-equivalent": ["budget", "method", "8 layers: equivalent tokens", "16 layers: FLOPs %"],
        "tab-later-batch": ["policy", "8 layers: answers changed", "16 layers: largest logit difference"],
    },
}
# the methods later benchmark studies compare, as rows of the methods tables of both testbeds
LATER_ROWS = ("downsampling", "pooling", "DART", "DivPrune")
METHOD_TABLES = ("tab-methods", "tab-methods-deep", "tab-field-keep", "tab-field-keep-deep",
                 "tab-field-flops", "tab-field-flops-deep")

_TABLE_JS = """
(label) => {
  const t = document.getElementById(label);
  if (!t || t.tagName !== 'TABLE') return null;
  return {headers: Array.from(t.querySelectorAll('thead th')).map(th => th.textContent.trim()),
          rows: Array.from(t.querySelectorAll('tbody tr')).map(
              tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent.trim()))};
}
"""


def table_problems(page, path: str, wanted: dict[str, list[str]]) -> list[str]:
    """Each labelled table of `wanted` is on the loaded page, numbered and captioned, with every
    header cell it must have and at least one row of values."""
    problems = []
    found = {a["id"]: a for a in page_artefacts(page) if a["kind"] == "table"}
    problems += table_caption_problems([found[k] for k in wanted if k in found], path)
    for label, columns in wanted.items():
        table = page.evaluate(_TABLE_JS, label)
        if table is None:
            problems.append(f"{path}: no table #{label}")
            continue
        missing = [c for c in columns if c not in table["headers"]]
        if missing:
            problems.append(f"{path}: table #{label} lacks the columns {missing}")
        if not table["rows"] or not any(cell for row in table["rows"] for cell in row):
            problems.append(f"{path}: table #{label} has no values")
    return problems


@pytest.mark.parametrize("path", sorted(TABLES))
def test_the_papers_tables_are_there_in_their_shape(page, site_url, path):
    open_page(page, urljoin(site_url, path))
    problems = table_problems(page, path, TABLES[path])
    assert not problems, "\n".join(problems)


def test_both_testbeds_appear_in_the_scenario_tables(page, site_url):
    open_page(page, urljoin(site_url, "notebooks/05-psigmoid.html"))
    table = page.evaluate(_TABLE_JS, "tab-scenario2")
    layers = {row[0] for row in table["rows"]}
    assert len(layers) == 2, layers  # one depth per testbed
    assert any(row[1] == "0.125" for row in table["rows"]), table["rows"]  # the paper's 87.5% reduction


def test_the_check_reports_a_missing_column(page, site_copy):
    path = "notebooks/05-psigmoid.html"
    html = (site_copy / path).read_text()
    start = html.index('id="tab-methods"')
    cell = html.index("<p>% of unpruned</p>", start)
    (site_copy / path).write_text(html[:cell] + "<p>share</p>" + html[cell + len("<p>% of unpruned</p>"):])
    with serve(site_copy) as url:
        open_page(page, urljoin(url, path))
        problems = table_problems(page, path, TABLES[path])
    assert any("tab-methods lacks" in p and "% of unpruned" in p for p in problems), problems


def missing_rows(page, labels, names) -> list[str]:
    """The (table, method) pairs of `labels` x `names` where the method has no row."""
    out = []
    for label in labels:
        text = page.evaluate("(l) => (document.getElementById(l) || {}).innerText || null", label)
        out += [f"#{label}: no row {name!r}" if text is not None else f"no table #{label}"
                for name in names if text is None or name not in text]
    return sorted(set(out))


def test_the_later_benchmarks_methods_are_rows_of_every_methods_table(page, site_url):
    open_page(page, urljoin(site_url, "notebooks/05-psigmoid.html"))
    problems = missing_rows(page, METHOD_TABLES, LATER_ROWS)
    assert not problems, "\n".join(problems)


def test_the_row_check_reports_a_missing_method(page, site_url):
    open_page(page, urljoin(site_url, "notebooks/05-psigmoid.html"))
    problems = missing_rows(page, ["tab-methods"], ["no such method"])
    assert problems == ["#tab-methods: no row 'no such method'"]
