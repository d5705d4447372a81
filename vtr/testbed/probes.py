"""Where the testbed looks: question sets whose vision tokens are split into named regions.

`attribute_regions` asks "what colour is the <shape>" (the shape unique in its scene) about fresh
scenes and partitions every image's patches into the named object, the other objects, the word and
the background. `vtr.analysis.region_lift` then measures how much each decoder layer's attention
prefers each region: a model that retrieves the named object attends to it far more than to the
other objects, not merely to objects in general.
"""
from __future__ import annotations

import numpy as np

from ..benchmarks.jsonl import Sample, Split
from . import scenes, tasks

REGIONS = ("target", "other objects", "word", "background")


def scene_regions(scene: scenes.Scene, target: scenes.SceneObject) -> dict[str, np.ndarray]:
    """Disjoint (GRID*GRID,) bool masks covering every patch; overlaps go to the earlier region."""
    t = scenes.object_patches(target)
    others = np.zeros_like(t)
    for o in scene.objects:
        if o is not target:
            others |= scenes.object_patches(o)
    others &= ~t
    word = scenes.box_patches(*scene.word_box) & ~t & ~others
    return {"target": t, "other objects": others, "word": word, "background": ~(t | others | word)}


def attribute_regions(n: int, seed: int = 11) -> tuple[Split, dict[str, np.ndarray]]:
    """n attribute questions about scenes of 2-6 objects (seed 11: disjoint from the benchmark's
    val = 1, test = 2 and the training monitor = 3) and their (n, GRID*GRID) region masks."""
    rng = np.random.default_rng(seed)
    samples, images, masks = [], {}, {r: [] for r in REGIONS}
    while len(samples) < n:
        scene = scenes.sample_scene(rng, int(rng.integers(2, 7)))
        q = tasks.ask(scene, "attribute", rng)
        if q is None:
            continue
        shape = q.text.split()[-1]
        target = next(o for o in scene.objects if o.shape == shape)
        for r, m in scene_regions(scene, target).items():
            masks[r].append(m)
        i = str(len(samples))
        images[i] = scenes.render(scene)
        samples.append(Sample(id=i, image=i, question=q.text, answer=q.answer, family=q.family))
    split = Split(".", samples)
    split._cache.update(images)
    return split, {r: np.stack(m) for r, m in masks.items()}
