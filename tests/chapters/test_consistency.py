"""The headline table and the chapters show the same verdicts because they compute them the same
way: every claim's chapter calls that claim's function in `vtr.chapters.claims`, in its notebook or
in the module that computes its facts (`vtr.chapters.pages.<topic>`; the headline calls all of
them), and the functions read the load-or-compute results of `vtr.chapters.runs`, saved once and
read back by every page. A chapter that judged a claim by code of its own, or
that skipped its claim, fails here."""
import re
from pathlib import Path

import pytest

from vtr.chapters import claims

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PAGES = Path(__file__).resolve().parents[2] / "vtr" / "chapters" / "pages"


def chapter_source(path: Path) -> str:
    """A chapter's notebook and the source of every `vtr.chapters.pages` module it uses."""
    text = path.read_text()
    used = set(re.findall(r"\bpages\.(\w+)\.", text))
    for names in re.findall(r"from vtr\.chapters\.pages import ([\w, ]+)", text):
        used |= {n.split(" as ")[0].strip() for n in names.split(",")}
    return text + "".join((PAGES / f"{n}.py").read_text() for n in sorted(used)
                          if (PAGES / f"{n}.py").is_file())


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
    text = chapter_source(path)
    assert f"claims.{check.__name__}(" in text, f"{path.name} does not show {check.__name__}'s verdict"


def test_no_chapter_applies_a_verdict_rule_of_its_own():
    for path in NOTEBOOKS.glob("*.md"):
        text = chapter_source(path)
        assert "claims.grade(" not in text and "from vtr.chapters.claims import grade" not in text, path.name


def test_the_introduction_builds_the_headline_from_claims_headline():
    assert "claims.headline(" in chapter_source(NOTEBOOKS / "01-introduction.md")
