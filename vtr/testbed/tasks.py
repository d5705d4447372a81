"""Question families of the testbed benchmark, each mirroring a benchmark of the papers' suite.

| family    | mirrors            | example question                                  | answers        |
|-----------|--------------------|---------------------------------------------------|----------------|
| attribute | GQA                | what colour is the triangle                       | a colour       |
| count     | VQAv2 "how many"   | how many circle                                   | 0 .. 6         |
| exist     | POPE (adversarial) | is there a red square                             | yes / no       |
| position  | GQA spatial        | where is the blue diamond                         | a quadrant     |
| text      | TextVQA            | what word is written                              | a word         |
| choice    | MMBench/ScienceQA  | which shape is green circle or square or diamond  | one option     |

Every answer is one word, scored by exact match. Questions are only asked when the answer is
unambiguous (e.g. "what colour is the triangle" only when there is exactly one triangle).
Absent objects for `exist` are adversarial as in POPE: a colour and a shape that both occur in
the scene, but never together.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections import Counter

import numpy as np

from .scenes import COLOURS, QUADRANTS, SHAPES, WORDS, Scene

FAMILIES = ("attribute", "count", "exist", "position", "text", "choice")
COUNT_WORDS = ("0", "1", "2", "3", "4", "5", "6")


@dataclass(frozen=True)
class Question:
    family: str
    text: str  # space-separated words, no trigger
    answer: str


def _unique(objects, key):
    c = Counter(key(o) for o in objects)
    return [o for o in objects if c[key(o)] == 1]


def ask(scene: Scene, family: str, rng: np.random.Generator) -> Question | None:
    """One question of `family` about `scene`, or None when the scene cannot support it."""
    objs = scene.objects

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    if family == "attribute":
        cands = _unique(objs, lambda o: o.shape)
        if not cands:
            return None
        o = pick(cands)
        return Question(family, f"what colour is the {o.shape}", o.colour)
    if family == "count":
        if rng.random() < 0.5:
            s = pick(SHAPES)
            n = sum(o.shape == s for o in objs)
            return Question(family, f"how many {s}", COUNT_WORDS[n])
        c = pick(list(COLOURS))
        n = sum(o.colour == c for o in objs)
        return Question(family, f"how many {c}", COUNT_WORDS[n])
    if family == "exist":
        present = {(o.colour, o.shape) for o in objs}
        if rng.random() < 0.5:
            c, s = pick(sorted(present))
            return Question(family, f"is there a {c} {s}", "yes")
        colours = sorted({o.colour for o in objs})
        shapes = sorted({o.shape for o in objs})
        absent = [(c, s) for c in colours for s in shapes if (c, s) not in present]
        if not absent:  # too few objects for an adversarial negative: fall back to a random one
            absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        c, s = pick(absent)
        return Question(family, f"is there a {c} {s}", "no")
    if family == "position":
        cands = _unique(objs, lambda o: (o.colour, o.shape))
        if not cands:
            return None
        o = pick(cands)
        return Question(family, f"where is the {o.colour} {o.shape}", o.quadrant)
    if family == "text":
        return Question(family, "what word is written", scene.word)
    if family == "choice":
        cands = _unique(objs, lambda o: o.colour)
        if not cands:
            return None
        o = pick(cands)
        # Distractors: preferably shapes that are in the image in other colours.
        others = [s for s in dict.fromkeys(x.shape for x in objs) if s != o.shape]
        others += [s for s in SHAPES if s != o.shape and s not in others]
        options = [o.shape] + others[:2]
        rng.shuffle(options)
        return Question(family, f"which shape is {o.colour} " + " or ".join(options), o.shape)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


CAPTION_PROMPT = "what is there"


def caption(scene: Scene) -> str:
    """The scene in words, for the optional captioning phase of training (`Recipe.caption_steps`):
    `<colour> <shape> <quadrant>` per object in reading order of the 4x4 cells (row, then column),
    then `written <word>`. A fixed order, so every word is predictable from the image."""
    from .scenes import CELL

    objs = sorted(scene.objects, key=lambda o: (o.cy // CELL, o.cx // CELL))
    return " ".join([f"{o.colour} {o.shape} {o.quadrant}" for o in objs] + [f"written {scene.word}"])


def ask_any(scene: Scene, rng: np.random.Generator, families=FAMILIES) -> Question:
    """A question of a random family the scene supports (always exists: `text` fits every scene)."""
    order = list(families)
    rng.shuffle(order)
    for fam in order:
        q = ask(scene, fam, rng)
        if q is not None:
            return q
    raise ValueError("no family in {families} applies to this scene")


def answer_space() -> dict[str, tuple[str, ...]]:
    """Possible answers per family (for answer priors and constrained scoring)."""
    return {
        "attribute": tuple(COLOURS),
        "count": COUNT_WORDS,
        "exist": ("yes", "no"),
        "position": QUADRANTS,
        "text": WORDS,
        "choice": SHAPES,
    }
