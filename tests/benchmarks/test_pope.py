"""POPE reader and its yes/no metrics."""
import pytest

from vtr.benchmarks import pope
from vtr.benchmarks.fixtures import RED, write_pope

from .helpers import close_to, missing


def test_read_round_trip(tmp_path):
    split = pope.read(write_pope(tmp_path))
    assert len(split) == 18  # 6 per split file
    assert [s.family for s in split.samples[::6]] == ["random", "popular", "adversarial"]
    s = split.samples[6]
    assert s.id == "popular-1" and s.answer == "yes" and s.meta["label"] == "yes"
    assert s.question == ("Is there a snowboard in the image?\n"
                          "Answer the question using a single word or phrase.")
    assert close_to(split.image(s), RED)
    assert len(pope.read(tmp_path, limit=2)) == 6  # limit is per split
    assert len(pope.read(tmp_path, splits=("random",))) == 6


def test_missing_files_name_the_path(tmp_path):
    (tmp_path / "val2014").mkdir()
    with missing(tmp_path / "coco_pope_random.json"):
        pope.read(tmp_path)
    with missing(tmp_path / "coco"):
        pope.read(tmp_path, images=tmp_path / "coco")


@pytest.mark.parametrize("text, expected", [
    ("Yes", "yes"), ("No", "no"), ("no", "no"), ("Yes, there is a dog.", "yes"),
    ("There is not a dog.", "no"), ("Yes. No other objects.", "yes"),  # only the first sentence
    ("No, there is none.", "no"), ("I see a cat", "yes"),  # LLaVA's default is yes
])
def test_parse_like_llava(text, expected):
    assert pope.parse_yes_no(text) == expected


def test_score_by_hand(tmp_path):
    split = pope.read(write_pope(tmp_path), splits=("random", "adversarial"))
    # labels per split: yes yes yes no no no
    random = ["Yes", "Yes, there is.", "yes", "Yes", "Yes.", "No"]  # TP=3 FN=0 FP=2 TN=1
    adversarial = ["No", "Yes", "No", "No", "No", "No"]              # TP=1 FN=2 FP=0 TN=3
    out = pope.score(split, random + adversarial)
    r = out["random"]
    # precision 3/5 = 0.6, recall 3/3 = 1, F1 = 2*0.6*1/1.6 = 0.75, acc 4/6, yes-ratio 5/6
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (3, 2, 1, 0)
    assert r["precision"] == pytest.approx(0.6) and r["recall"] == pytest.approx(1.0)
    assert r["f1"] == pytest.approx(0.75) and r["accuracy"] == pytest.approx(4 / 6)
    assert r["yes_ratio"] == pytest.approx(5 / 6)
    a = out["adversarial"]
    # precision 1/1, recall 1/3, F1 = 2*(1/3)/(4/3) = 0.5, acc 4/6, yes-ratio 1/6
    assert a["f1"] == pytest.approx(0.5) and a["accuracy"] == pytest.approx(4 / 6)
    assert a["yes_ratio"] == pytest.approx(1 / 6)
    assert out["f1"] == pytest.approx((0.75 + 0.5) / 2) and out["n"] == 12
