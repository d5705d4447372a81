"""The testbed benchmark: seeded `val` / `test` splits written to `data/benchmarks/testbed/`,
and the unbounded seeded `train` stream.

Each image carries questions of two different families; families are balanced by cycling, so
`test` (2400 questions) has 400 per family and `val` (600) has 100. Scenes in the fixed splits
have 2..6 objects. Seeds: val = 1, test = 2, training stream = the training seed + 1000 (disjoint
in practice: scenes are drawn from a space of ~10^20).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..benchmarks.jsonl import Sample, Split, read_split, write_split
from ..paths import benchmark_dir
from . import scenes, tasks

SPLITS = {"val": (1, 600), "test": (2, 2400)}
QUESTIONS_PER_IMAGE = 2


def generate_split(name: str) -> tuple[list[Sample], dict]:
    seed, n_questions = SPLITS[name]
    rng = np.random.default_rng(seed)
    samples, images, fam_cursor = [], {}, 0
    while len(samples) < n_questions:
        scene = scenes.sample_scene(rng, int(rng.integers(2, 7)))
        rel = f"images/{len(images):05d}.png"
        asked = 0
        # Cycle the family list, skipping families the scene cannot support.
        for step in range(len(tasks.FAMILIES)):
            fam = tasks.FAMILIES[(fam_cursor + step) % len(tasks.FAMILIES)]
            q = tasks.ask(scene, fam, rng)
            if q is None:
                continue
            samples.append(Sample(id=f"{name}-{len(samples):05d}", image=rel, question=q.text,
                                  answer=q.answer, family=fam, meta={"n_objects": len(scene.objects)}))
            asked += 1
            if asked == QUESTIONS_PER_IMAGE or len(samples) == n_questions:
                fam_cursor = (fam_cursor + step + 1) % len(tasks.FAMILIES)
                break
        images[rel] = scenes.render(scene)
    return samples, images


def materialise(root: Path | None = None) -> None:
    root = root or benchmark_dir("testbed")
    for name in SPLITS:
        samples, images = generate_split(name)
        write_split(root / name, samples, images)


def load(split: str) -> Split:
    if split not in SPLITS:
        raise ValueError(f"unknown testbed split {split!r}; expected one of {sorted(SPLITS)}")
    folder = benchmark_dir("testbed") / split
    if not (folder / "questions.jsonl").exists():
        materialise()
    return read_split(folder)
