"""MME reader (both official folder layouts) and acc / acc+ / perception / cognition scores."""
import pytest

from vtr.benchmarks import mme
from vtr.benchmarks.fixtures import BLUE, write_mme

from .helpers import close_to, missing


def test_subtask_names():
    assert len(mme.PERCEPTION) == 10 and len(mme.COGNITION) == 4


def test_read_round_trip(tmp_path):
    split = mme.read(write_mme(tmp_path))
    assert len(split) == 2 * 15  # 14 subtasks x 1 image x 2 questions + one more existence image
    nested = [s for s in split.samples if s.family == "artwork"]
    assert nested[0].image == "artwork/images/0001.jpg" and nested[0].answer == "yes"
    assert nested[1].answer == "no" and nested[1].meta["answer"] == "No"
    flat = next(s for s in split.samples if s.family == "code_reasoning")
    assert flat.image == "code_reasoning/0001.png" and flat.meta["category"] == "cognition"
    assert flat.question == ("Is there a code_reasoning clue in this image? Please answer yes or no."
                             "\nAnswer the question using a single word or phrase.")
    assert close_to(split.image(nested[0]), BLUE) and close_to(split.image(flat), BLUE)
    assert len(mme.read(tmp_path, limit=5)) == 5


def test_missing_files_name_the_path(tmp_path):
    with missing(tmp_path / "existence"):
        mme.read(tmp_path)
    write_mme(tmp_path)
    (tmp_path / "count" / "0001.png").unlink()
    with missing(f"{tmp_path / 'count' / '0001'}{{.jpg,.png,.jpeg}}"):
        mme.read(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("Yes", "yes"), ("no", "no"), ("Yes, it is.", "yes"), ("No.", "no"),
    ("There is no dog", "other"), ("Maybe", "other"),  # only the first 4 characters count
])
def test_parse_like_official(text, expected):
    assert mme.parse_yes_no(text) == expected


def test_score_by_hand(tmp_path):
    split = mme.read(write_mme(tmp_path))
    preds = [s.answer for s in split.samples]  # all right ...
    ex = [i for i, s in enumerate(split.samples) if s.family == "existence"]
    preds[ex[3]] = "Yes"         # existence image 2: one of two right
    code = [i for i, s in enumerate(split.samples) if s.family == "code_reasoning"]
    preds[code[0]] = "No"        # code_reasoning: both wrong ("Maybe" parses to other)
    preds[code[1]] = "Maybe"
    out = mme.score(split, preds)
    e = out["subtasks"]["existence"]
    # existence: acc = 3/4 questions, acc+ = 1/2 images, score = (0.75 + 0.5) * 100 = 125
    assert e["acc"] == pytest.approx(0.75) and e["acc_plus"] == pytest.approx(0.5)
    assert e["score"] == pytest.approx(125)
    assert out["subtasks"]["code_reasoning"]["score"] == 0
    # perception = 125 + 9 * 200 = 1925; cognition = 0 + 3 * 200 = 600
    assert out["perception"] == pytest.approx(1925) and out["cognition"] == pytest.approx(600)
    assert out["total"] == pytest.approx(2525)
