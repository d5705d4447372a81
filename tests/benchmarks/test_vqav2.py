"""VQAv2 reader (questions joined with annotations) and VQA accuracy per answer type."""
import pytest

from vtr.benchmarks import vqav2
from vtr.benchmarks.fixtures import GREEN, RED, write_vqav2

from .helpers import close_to, missing


def test_read_round_trip(tmp_path):
    split = vqav2.read(write_vqav2(tmp_path))
    assert len(split) == 3
    s = split.samples[1]
    assert s.id == "262148001" and s.family == "number" and len(s.answer) == 10
    assert s.question == "How many people are there?\nAnswer the question using a single word or phrase."
    assert s.image == "COCO_val2014_000000262148.jpg" and s.meta["question_type"] == "what"
    assert s.meta["answers"][0] == {"answer": "2", "answer_confidence": "yes", "answer_id": 1}
    assert close_to(split.image(s), RED) and close_to(split.image(split.samples[2]), GREEN)
    assert len(vqav2.read(tmp_path, limit=1)) == 1


def test_missing_files_name_the_path(tmp_path):
    with missing(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json"):
        vqav2.read(tmp_path)
    write_vqav2(tmp_path)
    (tmp_path / "v2_mscoco_val2014_annotations.json").unlink()
    with missing(tmp_path / "v2_mscoco_val2014_annotations.json"):
        vqav2.read(tmp_path)


def test_score_by_hand(tmp_path):
    split = vqav2.read(write_vqav2(tmp_path))
    # yes/no: "Yes" vs 10 x "yes" -> 1.0
    # number: "two" -> "2", given by 3 of 10: (3*(2/3) + 7*1)/10 = 0.9
    # other:  "Red." -> "red", given by 1 of 10: (1*0 + 9*(1/3))/10 = 0.3
    out = vqav2.score(split, ["Yes", "two", "Red."])
    assert out["accuracy"] == pytest.approx((1.0 + 0.9 + 0.3) / 3)
    assert out["per_answer_type"] == pytest.approx({"yes/no": 1.0, "number": 0.9, "other": 0.3})
