"""TextVQA reader (with and without Rosetta OCR tokens) and VQA accuracy."""
import pytest

from vtr.benchmarks import textvqa
from vtr.benchmarks.fixtures import RED, write_textvqa

from .helpers import close_to, missing


def test_read_round_trip(tmp_path):
    split = textvqa.read(write_textvqa(tmp_path))
    assert len(split) == 2
    s = split.samples[0]
    assert s.id == "34602" and len(s.answer) == 10 and s.meta["image_classes"] == ["Bottle"]
    assert s.question == ("what is the brand of this drink?\n"
                          "Answer the question using a single word or phrase.")
    assert close_to(split.image(s), RED)
    assert len(textvqa.read(tmp_path, limit=1)) == 1


def test_ocr_tokens_in_prompt(tmp_path):
    split = textvqa.read(write_textvqa(tmp_path),
                         ocr_file=tmp_path / "TextVQA_Rosetta_OCR_v0.2_val.json")
    assert split.samples[0].question == ("what is the brand of this drink?\n"
                                         "Reference OCR token: coca, cola, classic\n"
                                         "Answer the question using a single word or phrase.")
    assert "Reference OCR token" not in split.samples[1].question  # no tokens for that image


def test_missing_files_name_the_path(tmp_path):
    with missing(tmp_path / "TextVQA_0.5.1_val.json"):
        textvqa.read(tmp_path)
    write_textvqa(tmp_path)
    with missing(tmp_path / "ocr.json"):
        textvqa.read(tmp_path, ocr_file=tmp_path / "ocr.json")


def test_score_by_hand(tmp_path):
    split = textvqa.read(write_textvqa(tmp_path))
    # q1: "Coca-Cola" -> "coca cola", which 2 of 10 humans gave: (2*(1/3) + 8*(2/3))/10 = 0.6
    # q2: "STOP." -> "stop", all 10 humans: 1.0.  mean = (0.6 + 1.0) / 2 = 0.8
    out = textvqa.score(split, ["Coca-Cola", "STOP."])
    assert out["accuracy"] == pytest.approx(0.8) and out["n"] == 2
