"""The testbed benchmark: seeded `val` / `test` splits written to `data/benchmarks/testbed/`,
and the unbounded seeded `train` stream.

Each image carries questions of two different families; families are balanced by cycling, so
`test` (2400 questions) has 400 per family, `val` (600) has 100 and `val-extra` (1800) 300. Scenes
in the fixed splits have 2..6 objects. Seeds: val = 1, test = 2, val-extra = 3, training stream =
the training seed + 1000 (disjoint in practice: scenes are drawn from a space of ~10^20).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..benchmarks.jsonl import Sample, Split, read_split, write_split
from ..errors import InputError
from ..paths import benchmark_dir
from . import scenes, tasks

# val-extra: 1800 more validation questions, which G-Search's sequential test adds to val when a
# decision is close (`vtr.search.sequential`); nothing else reads them
SPLITS = {"val": (1, 600), "test": (2, 2400), "val-extra": (3, 1800)}
QUESTIONS_PER_IMAGE = 2


def generate_split(name: str) -> tuple[list[Sample], dict]:
    """Questions of two different families per image, filling each family's quota exactly."""
    seed, n_questions = SPLITS[name]
    quota = n_questions // len(tasks.FAMILIES)
    rng = np.random.default_rng(seed)
    samples, images = [], {}
    count = {f: 0 for f in tasks.FAMILIES}
    while len(samples) < quota * len(tasks.FAMILIES):
        scene = scenes.sample_scene(rng, int(rng.integers(2, 7)))
        rel = f"images/{len(images):05d}.png"
        asked = 0
        # least-filled families first (ties in the fixed family order), skipping full ones
        for fam in sorted((f for f in tasks.FAMILIES if count[f] < quota), key=lambda f: count[f]):
            q = tasks.ask(scene, fam, rng)
            if q is None:
                continue
            samples.append(Sample(id=f"{name}-{len(samples):05d}", image=rel, question=q.text,
                                  answer=q.answer, family=fam, meta={"n_objects": len(scene.objects)}))
            count[fam] += 1
            asked += 1
            if asked == QUESTIONS_PER_IMAGE:
                break
        if asked:
            images[rel] = scenes.render(scene)
    return samples, images


def materialise(root: Path | None = None, names=None) -> None:
    root = root or benchmark_dir("testbed")
    for name in names or SPLITS:
        samples, images = generate_split(name)
        write_split(root / name, samples, images)


def load(split: str) -> Split:
    if split not in SPLITS:
        raise InputError(f"unknown testbed split {split!r}; expected one of {sorted(SPLITS)}")
    folder = benchmark_dir("testbed") / split
    if not (folder / "questions.jsonl").exists():
        materialise(names=[split])
    return read_split(folder)
