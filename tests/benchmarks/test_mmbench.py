"""MMBench TSV reader (base64 images, image references, circular rotations) and accuracy."""
import pytest

from vtr.benchmarks import mmbench
from vtr.benchmarks.fixtures import GREEN, RED, write_mmbench

from .helpers import close_to, missing

SUFFIX = "\nAnswer with the option's letter from the given choices directly."


def test_read_round_trip(tmp_path):
    split = mmbench.read(write_mmbench(tmp_path))
    assert len(split) == 3
    s0, s1, s2 = split.samples
    assert s0.question == ("Look at the picture.\nWhat is the main color of the image?\n"
                           "A. green\nB. red\nC. blue\nD. yellow" + SUFFIX)
    assert s1.question == "Is the square filled?\nA. yes\nB. no" + SUFFIX  # no hint, 2 options
    assert (s0.answer, s1.answer, s2.answer) == ("B", "A", "C")
    assert s0.family == "color_recognition" and s0.meta["l2-category"] == "FP-S"
    assert "image" not in s0.meta
    assert close_to(split.image(s0), RED) and close_to(split.image(s1), GREEN)  # PNG, JPEG
    assert close_to(split.image(s2), GREEN)  # image field "1" refers to row 1's image
    assert close_to(split.subset(1).image(s0), RED)
    assert len(mmbench.read(tmp_path / "mmbench_dev_20230712.tsv", limit=1)) == 1


def test_circular_rotations(tmp_path):
    split = mmbench.read(write_mmbench(tmp_path), circular=True)
    assert len(split) == 4 + 2 + 3
    q0 = split.samples[:4]
    assert [s.id for s in q0] == ["0", "1000000", "2000000", "3000000"]
    # round 1 shows red, blue, yellow, green: the answer red moves from B to A
    assert "A. red\nB. blue\nC. yellow\nD. green" in q0[1].question
    assert [s.answer for s in q0] == ["B", "A", "D", "C"]


def test_missing_file_names_the_path(tmp_path):
    with missing(tmp_path / "MMBench_DEV_EN.tsv"):
        mmbench.read(tmp_path / "MMBench_DEV_EN.tsv")


def test_score_by_hand(tmp_path):
    split = mmbench.read(write_mmbench(tmp_path))
    # B right, "A. yes" right, "B" wrong (answer C): accuracy 2/3, no circular groups
    out = mmbench.score(split, ["B", "A. yes", "B"])
    assert out["accuracy"] == pytest.approx(2 / 3) and "circular_accuracy" not in out

    circ = mmbench.read(tmp_path / "mmbench_dev_20230712.tsv", circular=True)
    # q0 right in all 4 rounds; q1 right in 1 of 2; q2 right in 3 of 3
    preds = ["B", "A", "D", "C"] + ["A", "A"] + ["C", "B", "A"]
    out = mmbench.score(circ, preds)
    # single pass: 8 of 9 right; circular: q0 and q2 of 3 questions -> 2/3
    assert out["accuracy"] == pytest.approx(8 / 9)
    assert out["circular_accuracy"] == pytest.approx(2 / 3)
