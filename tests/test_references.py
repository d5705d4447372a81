"""The book's bibliography (book/references.bib) as its author-year citations print it: no two
entries may print the same label ("Liu et al., 2024" for two papers)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pybtex.database import parse_file

BIB = Path(__file__).resolve().parents[1] / "book" / "references.bib"


def label(entry) -> str:
    """What sphinxcontrib-bibtex's author_year style prints in the text for `entry`."""
    people = entry.persons["author"]
    names = [" ".join(p.last_names) for p in people]
    who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who}, {entry.fields['year']}"


def test_every_citation_label_names_one_entry():
    by_label = defaultdict(list)
    for key, entry in parse_file(BIB).entries.items():
        by_label[label(entry)].append(key)
    shared = {lab: keys for lab, keys in by_label.items() if len(keys) > 1}
    assert not shared, f"entries sharing a printed label (give their years a/b suffixes): {shared}"


def test_the_label_rule_sees_a_collision(tmp_path):
    bib = tmp_path / "two.bib"
    bib.write_text("@misc{a, author = {Liu, H. and Li, C. and Lee, Y.}, title = {A}, year = {2024}}\n"
                   "@misc{b, author = {Liu, H. and Li, C. and Li, Y.}, title = {B}, year = {2024}}\n")
    labels = [label(e) for e in parse_file(bib).entries.values()]
    assert labels == ["Liu et al., 2024"] * 2
