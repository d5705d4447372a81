"""The headline table and the chapters show the same verdicts because they compute them the same
way: every claim's chapter calls that claim's function in `vtr.chapters.claims` (the headline
calls all of them), and the functions read the load-or-compute results of `vtr.chapters.runs`,
saved once and read back by every page. A chapter that judged a claim by code of its own, or
that skipped its claim, fails here."""
import re
from pathlib import Path

import pytest

from vtr.chapters import claims

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def chapter_of_label() -> dict[str, Path]:
    out = {}
    for path in NOTEBOOKS.glob("*.md"):
        first = re.search(r"^\((?P<label>[a-z0-9-]+)\)=\s*$", path.read_text(), flags=re.M)
        if first:
            out[first["label"]] = path
    return out


@pytest.mark.parametrize("check", claims.CLAIMS, ids=lambda c: c.__name__)
def test_each_claims_chapter_shows_the_verdict_of_the_headlines_function(check):
    key = check.__name__.removesuffix("_claim")
    chapter = claims.CLAIM_TEXT[key][3]
    path = chapter_of_label().get(chapter)
    assert path is not None, f"no notebook carries the label ({chapter})="
    text = path.read_text()
    assert f"claims.{check.__name__}(" in text, f"{path.name} does not show {check.__name__}'s verdict"


def test_no_chapter_applies_a_verdict_rule_of_its_own():
    for path in NOTEBOOKS.glob("*.md"):
        text = path.read_text()
        assert "claims.grade(" not in text and "from vtr.chapters.claims import grade" not in text, path.name


def test_the_introduction_builds_the_headline_from_claims_headline():
    assert "claims.headline()" in (NOTEBOOKS / "01-introduction.md").read_text()
