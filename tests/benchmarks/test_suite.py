"""`vtr.benchmarks.suite`: several benchmarks as one split, scored by each benchmark's own scorer."""
from __future__ import annotations

import pytest

from vtr.benchmarks import get_reader, get_scorer, suite
from vtr.benchmarks.fixtures import GREEN, RED, write_gqa, write_mmbench, write_pope

from .helpers import close_to


@pytest.fixture
def parts(tmp_path):
    out = {}
    for name, writer in (("gqa", write_gqa), ("pope", write_pope), ("mmbench", write_mmbench)):
        (tmp_path / name).mkdir()
        out[name] = get_reader(name)(writer(tmp_path / name))
    return out


def test_join_keeps_every_sample_and_finds_each_image(parts, tmp_path):
    joined = suite.join(parts, tmp_path / "joined")
    assert len(joined) == sum(len(p) for p in parts.values())
    assert len({s.id for s in joined.samples}) == len(joined)  # ids unique across benchmarks
    assert {s.family for s in joined.samples} == set(parts)
    first = {s.family: s for s in reversed(joined.samples)}  # the first sample of each benchmark
    assert close_to(joined.image(first["gqa"]), RED)
    assert close_to(joined.image(first["mmbench"]), RED)  # a base64 image inside the TSV
    assert close_to(joined.image(joined.subset(2).samples[0]), RED)
    green = next(s for s in joined.samples if s.family == "pope" and "210789" in s.image)
    assert close_to(joined.image(green), GREEN)


def test_score_equals_each_benchmarks_own_scorer(parts, tmp_path):
    joined = suite.join(parts, tmp_path / "joined")
    preds = ["yes" if i % 2 else "B" for i in range(len(joined))]
    got = suite.score(joined.samples, preds)
    for name, part in parts.items():
        own = [p for s, p in zip(joined.samples, preds) if s.family == name]
        official = get_scorer(name)(part.samples, own)
        assert got["benchmarks"][name] == official
        assert got["families"][name] == suite.paper_metric(name, official)
    hits = suite.hits(joined.samples, preds)
    assert got["overall"] == pytest.approx(sum(hits) / len(hits))


def test_per_question_hits_follow_each_benchmarks_rule(parts, tmp_path):
    joined = suite.join(parts, tmp_path / "joined")
    right = [s.meta["sample"].answer for s in joined.samples]  # the reference answer itself
    assert suite.hits(joined.samples, right) == [1.0] * len(joined)
    wrong = ["zebra"] * len(joined)
    pope_no = [h for s, h in zip(joined.samples, suite.hits(joined.samples, wrong)) if s.family == "pope"]
    # POPE reads any answer without "no" as yes: "zebra" is right exactly on the "yes" questions
    labels = [s.answer for s in parts["pope"].samples]
    assert pope_no == [float(label == "yes") for label in labels]
