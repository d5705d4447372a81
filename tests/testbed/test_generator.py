"""The testbed benchmark: determinism, hand-checked answers, split layout."""
import numpy as np
import pytest

from vtr.testbed import data, scenes, tasks
from vtr.testbed.scenes import Scene, SceneObject


def test_scenes_and_questions_are_deterministic():
    a = [scenes.sample_scene(np.random.default_rng(7), 5) for _ in range(3)]
    b = [scenes.sample_scene(np.random.default_rng(7), 5) for _ in range(3)]
    assert a == b
    ra, rb = np.random.default_rng(1), np.random.default_rng(1)
    qa = [tasks.ask_any(a[0], ra) for _ in range(20)]
    qb = [tasks.ask_any(b[0], rb) for _ in range(20)]
    assert qa == qb
    assert np.array_equal(np.asarray(scenes.render(a[0])), np.asarray(scenes.render(b[0])))


def test_materialised_splits_match_the_generator():
    """The shipped data/benchmarks/testbed files are exactly what the seeded generator produces."""
    for name in ("val", "test"):
        shipped = data.load(name)
        samples, _ = data.generate_split(name)
        assert [(s.question, s.answer, s.family) for s in shipped.samples] == \
               [(s.question, s.answer, s.family) for s in samples]
    test = data.load("test")
    counts = {f: sum(s.family == f for s in test.samples) for f in tasks.FAMILIES}
    assert len(test) == 2400 and set(counts.values()) == {400}
    assert len(data.load("val")) == 600


HAND = Scene(objects=(
    SceneObject("red", "circle", "large", 12, 12),        # top-left
    SceneObject("blue", "square", "small", 84, 12),       # top-right
    SceneObject("red", "triangle", "small", 84, 84),      # bottom-right
    SceneObject("green", "circle", "large", 12, 60),      # bottom-left
), word="fish", word_box=(30, 40, 52, 53))


@pytest.mark.parametrize("family,expected", [
    ("attribute", {"what colour is the square": "blue", "what colour is the triangle": "red"}),
    ("position", {"where is the red circle": "top-left", "where is the blue square": "top-right",
                  "where is the red triangle": "bottom-right", "where is the green circle": "bottom-left"}),
    ("text", {"what word is written": "fish"}),
])
def test_hand_checked_answers(family, expected):
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(200):
        q = tasks.ask(HAND, family, rng)
        seen[q.text] = q.answer
    for text, answer in seen.items():
        assert expected[text] == answer
    assert set(seen) <= set(expected)


def test_hand_checked_count_exist_choice():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = tasks.ask(HAND, "count", rng)
        word = q.text.split()[-1]
        truth = sum(o.shape == word or o.colour == word for o in HAND.objects)
        assert q.answer == str(truth)
        q = tasks.ask(HAND, "exist", rng)
        c, s = q.text.split()[-2:]
        present = any(o.colour == c and o.shape == s for o in HAND.objects)
        assert q.answer == ("yes" if present else "no")
        if not present:  # adversarial: colour and shape both occur in the scene
            assert any(o.colour == c for o in HAND.objects) and any(o.shape == s for o in HAND.objects)
        q = tasks.ask(HAND, "choice", rng)
        colour = q.text.split()[3]
        only = [o for o in HAND.objects if o.colour == colour]
        assert len(only) == 1 and q.answer == only[0].shape and q.answer in q.text.split()[4:]


def test_hand_checked_caption():
    """Objects in reading order of their cells (row, then column), then the word."""
    assert tasks.caption(HAND) == ("red circle top-left blue square top-right green circle bottom-left "
                                   "red triangle bottom-right written fish")


def test_caption_targets_are_the_caption_then_eos():
    from vtr.testbed.model import WordTokenizer
    from vtr.testbed.batches import caption_batch

    tok = WordTokenizer()
    one = Scene(objects=HAND.objects[:1], word="star", word_box=(30, 40, 52, 53))
    ids, mask, targets, start = caption_batch([HAND, one], tok)
    assert tok.vocab[int(ids[0, start])] == "assistant:"
    for row, scene in zip(targets, (HAND, one)):
        assert tok.decode(row[row >= 0]) == tasks.caption(scene) + " <eos>"
    assert int(mask[1].sum()) < int(mask[0].sum()) and (targets[1] == -100).any()


def test_patch_labels_locate_objects():
    lab = scenes.patch_labels(HAND)
    centre = lab["centre"].reshape(scenes.GRID, scenes.GRID)
    assert centre[12 // 8, 12 // 8] == 1 and centre[84 // 8, 84 // 8] == 1
    colour = lab["colour"].reshape(scenes.GRID, scenes.GRID)
    assert colour[1, 1] == list(scenes.COLOURS).index("red") + 1
    assert (lab["word"] > 0).sum() >= 3
