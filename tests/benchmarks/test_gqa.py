"""GQA testdev-balanced reader and exact-match accuracy."""
import pytest

from vtr.benchmarks import gqa
from vtr.benchmarks.fixtures import GREEN, RED, write_gqa

from .helpers import close_to, missing


def test_read_round_trip(tmp_path):
    split = gqa.read(write_gqa(tmp_path))
    assert len(split) == 3
    s = split.samples[1]
    assert s.id == "201640614" and s.answer == "table" and s.family == "query"
    assert s.question == "What is the cup on?\nAnswer the question using a single word or phrase."
    assert s.meta["imageId"] == "n161313" and s.meta["fullAnswer"] == "The cup is on the table."
    assert close_to(split.image(s), RED) and close_to(split.image(split.samples[2]), GREEN)
    assert len(gqa.read(tmp_path, limit=2)) == 2


def test_missing_files_name_the_path(tmp_path):
    with missing(tmp_path / "testdev_balanced_questions.json"):
        gqa.read(tmp_path)
    write_gqa(tmp_path)
    with missing(tmp_path / "imgs"):
        gqa.read(tmp_path, images=tmp_path / "imgs")


def test_score_by_hand(tmp_path):
    split = gqa.read(write_gqa(tmp_path))
    # "Yes." -> "yes" right; "the table" != "table" (GQA has no article removal) wrong;
    # " Left " -> "left" right.  accuracy = 2/3; per type verify 1, query 0, choose 1.
    out = gqa.score(split, ["Yes.", "the table", " Left "])
    assert out["accuracy"] == pytest.approx(2 / 3) and out["n"] == 3
    assert out["per_type"] == {"choose": 1.0, "query": 0.0, "verify": 1.0}
    with pytest.raises(ValueError):
        gqa.score(split, ["yes"])
