"""The headline table and the chapters agree, as built: every number of a headline row's
measurements (both testbeds) appears on the page of the chapter the row links to. The check also
runs on a damaged copy of the site, to show that it can fail."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

INTRO = "notebooks/01-introduction.html"
NUMBER = re.compile(r"\d+\.\d+")


def page_text(path: Path) -> str:
    raw = re.sub(r"<script.*?</script>|<style.*?</style>", " ", path.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def headline_rows(root: Path) -> list[dict]:
    """The headline table's rows: the linked chapter page and the text of every cell."""
    raw = (root / INTRO).read_text()
    start = raw.index('id="headline-table"') if 'id="headline-table"' in raw else raw.index("Headline table")
    table = raw[raw.index("<table", start):raw.index("</table>", start)]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        link = re.search(r'href="([^"#]+\.html)', tr)
        if cells and link:
            rows.append({"chapter": (root / INTRO).parent.joinpath(link.group(1)).resolve(), "cells": cells})
    return rows


def consistency_problems(root: Path) -> list[str]:
    problems = []
    rows = headline_rows(root)
    if not rows:
        return [f"{INTRO}: no headline table with chapter links"]
    for row in rows:
        text = page_text(row["chapter"])
        claim, measured = row["cells"][1], row["cells"][3:]
        for cell in measured:
            for number in NUMBER.findall(cell):
                if number not in text:
                    problems.append(f"{row['chapter'].name}: the headline's {number} ({claim[:40]}...) is "
                                    "not on the page")
    return problems


def test_every_headline_number_is_on_its_chapters_page(site_root):
    problems = consistency_problems(site_root)
    assert not problems, "\n".join(problems)


def test_the_check_reports_a_number_missing_from_a_chapter(site_copy):
    row = next(r for r in headline_rows(site_copy) if any(NUMBER.search(c) for c in r["cells"][3:]))
    number = next(NUMBER.search(c).group(0) for c in row["cells"][3:] if NUMBER.search(c))
    page = row["chapter"]
    page.write_text(page.read_text().replace(number, "#" * len(number)))
    assert any(number in p for p in consistency_problems(site_copy))
