"""How the book summarises a testbed accuracy result (`vtr.chapters.runs`)."""
from vtr.chapters import runs as book_runs


def _acc(fams, overall):
    return {"overall": overall, "families": {f: a for f, (a, _, _) in fams.items()},
            "prior": {f: p for f, (_, p, _) in fams.items()},
            "blank_image": {"families": {f: b for f, (_, _, b) in fams.items()}}}


def test_a_family_counts_as_from_the_image_only_above_its_prior_and_lost_without_the_image():
    acc = _acc({"text": (1.0, 0.1, 0.1),        # far above prior, lost when blanked
                "count": (0.45, 0.40, 0.10),    # near its prior
                "exist": (0.80, 0.50, 0.78),    # above prior but kept without the image
                "position": (0.61, 0.50, 0.50)}, overall=0.7)
    assert book_runs.families_from_image(acc) == (["text", "position"], ["count", "exist"])


def test_target_needs_overall_and_every_family():
    fams = {"text": (1.0, 0.1, 0.1), "count": (0.85, 0.4, 0.3)}
    assert book_runs.meets_target(_acc(fams, overall=0.95))
    assert not book_runs.meets_target(_acc(fams, overall=0.89))
    assert not book_runs.meets_target(_acc({**fams, "position": (0.79, 0.3, 0.3)}, overall=0.95))


def test_without_an_answer_prior_the_blank_image_alone_decides():
    acc = _acc({"pope": (0.80, 0.0, 0.50),      # lost when blanked
                "mme": (0.60, 0.0, 0.58)}, overall=0.7)   # kept without the image
    acc["prior"] = None  # a benchmark profile has no answer prior
    assert book_runs.families_from_image(acc) == (["pope"], ["mme"])
