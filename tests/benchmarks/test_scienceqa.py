"""ScienceQA-IMG reader and letter accuracy."""
import pytest

from vtr.benchmarks import scienceqa
from vtr.benchmarks.fixtures import BLUE, RED, write_scienceqa

from .helpers import close_to, missing


def test_read_round_trip(tmp_path):
    split = scienceqa.read(write_scienceqa(tmp_path))
    assert [s.id for s in split.samples] == ["1", "2", "5"]  # test split, with an image only
    s1, s2, s5 = split.samples
    assert s1.question == ("Which of these states is farthest north?\nA. Arizona\nB. Maine\nC. Texas\n"
                           "Answer with the option's letter from the given choices directly.")
    assert s2.question.startswith("Context: Ducks live near water.\nWhich animal's feet")
    assert (s1.answer, s2.answer, s5.answer) == ("B", "A", "C")
    assert s1.family == "social science" and s1.meta["choices"] == ["Arizona", "Maine", "Texas"]
    assert s1.image == "test/1/image.png"
    assert close_to(split.image(s1), RED) and close_to(split.image(s5), BLUE)
    assert len(scienceqa.read(tmp_path, limit=2)) == 2


def test_missing_files_name_the_path(tmp_path):
    with missing(tmp_path / "problems.json"):
        scienceqa.read(tmp_path)
    write_scienceqa(tmp_path)
    with missing(tmp_path / "images" / "test"):
        scienceqa.read(tmp_path, images=tmp_path / "images")


def test_score_by_hand(tmp_path):
    split = scienceqa.read(write_scienceqa(tmp_path))
    # "B" right; "The answer is A." right; "D" -> wrong (answer C).  accuracy = 2/3
    out = scienceqa.score(split, ["B", "The answer is A.", "D"])
    assert out["accuracy"] == pytest.approx(2 / 3) and out["n"] == 3
    assert out["per_subject"] == {"natural science": 0.5, "social science": 1.0}
    # a letter beyond the options never counts: "D" for a 3-option question parses to nothing
    assert scienceqa.score(split.subset(1), ["D"])["accuracy"] == 0.0


def test_llava_image_layout(tmp_path):
    write_scienceqa(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "test").rename(tmp_path / "images" / "test")  # LLaVA's scienceqa/images/test/...
    split = scienceqa.read(tmp_path)
    assert split.folder == tmp_path / "images" and close_to(split.image(split.samples[0]), RED)
