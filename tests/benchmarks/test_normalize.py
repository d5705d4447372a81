"""The standard VQA answer normalisation, VQA accuracy and the letter parser, by hand."""
import pytest

from vtr.benchmarks.normalize import normalize_answer, parse_letter, vqa_accuracy


@pytest.mark.parametrize("raw, expected", [
    ("Two", "2"),                    # number word -> digit, lowercase
    ("the dog.", "dog"),             # article dropped, final period deleted
    ("3.5", "3.5"),                  # a period followed by a digit stays
    ("dont", "don't"),               # contraction restored
    ("Yes!", "yes"),                 # "!" not touching a space -> space, then stripped by split
    ("t-shirt", "t shirt"),          # "-" not touching a space -> space
    ("black - white", "black white"),  # "-" touching a space -> deleted
    ("red, white", "red white"),     # commas deleted
    ("2,000", "2000"),
    ("A man's hat", "man 's hat"),   # possessive split off, article dropped
    ("  none \n", "0"),
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_vqa_accuracy_leave_one_out_by_hand():
    others = ["x"] * 10
    # m humans gave the answer; leaving out one of them leaves m-1 matches, one of the others m.
    # 1 match: (1*min(0/3,1) + 9*min(1/3,1)) / 10 = 3/10 = 0.3
    assert vqa_accuracy("cat", ["cat"] + others[:9]) == pytest.approx(0.3)
    # 2 matches: (2*(1/3) + 8*(2/3)) / 10 = (2/3 + 16/3) / 10 = 6/10 = 0.6
    assert vqa_accuracy("cat", ["cat"] * 2 + others[:8]) == pytest.approx(0.6)
    # 3 matches: (3*(2/3) + 7*1) / 10 = 9/10 = 0.9
    assert vqa_accuracy("cat", ["cat"] * 3 + others[:7]) == pytest.approx(0.9)
    # 4 matches: every leave-one-out subset keeps >= 3 matches -> 1
    assert vqa_accuracy("cat", ["cat"] * 4 + others[:6]) == pytest.approx(1.0)
    assert vqa_accuracy("dog", ["cat"] * 10) == 0.0
    # normalisation on both sides: "Two." and "two" both become "2"; 2 matches -> 0.6
    assert vqa_accuracy("Two.", ["two", "2"] + others[:8]) == pytest.approx(0.6)


@pytest.mark.parametrize("text, n, expected", [
    ("B", 4, "B"), ("B.", 4, "B"), ("(C) blue", 4, "C"), ("The answer is D.", 4, "D"),
    ("E", 4, None), ("I think B", 4, "B"), ("none of them", 4, None), (" a", 4, None),
])
def test_parse_letter(text, n, expected):
    assert parse_letter(text, n) == expected
