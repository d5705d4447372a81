"""Probe: the shipped recipe, shortened, on a coarser patch grid (same 96 px scenes).

usage: python grid_probe.py OUT PATCH VISION_STEPS LM_STEPS TUNE_STEPS [BATCH [EVAL_EVERY]]
PATCH 12 -> 8x8 = 64 vision tokens (the first prototype size); PATCH 8 -> 144 (shipped).
Exploratory; not part of vtr. Patches the scene module's grid constants before anything uses them.
"""
import sys
from pathlib import Path

from vtr.testbed import scenes

out, patch = Path(sys.argv[1]), int(sys.argv[2])
scenes.PATCH_SIZE = patch
scenes.GRID = scenes.IMAGE_SIZE // patch
scenes.LABEL_SPACES["row"] = scenes.LABEL_SPACES["col"] = scenes.GRID

from vtr.testbed.model import TestbedSpec  # noqa: E402
from vtr.testbed.train import Recipe, train  # noqa: E402

recipe = Recipe(vision_steps=int(sys.argv[3]), lm_steps=int(sys.argv[4]), tune_steps=int(sys.argv[5]),
                batch=int(sys.argv[6]) if len(sys.argv) > 6 else 16,
                eval_every=int(sys.argv[7]) if len(sys.argv) > 7 else 250)
print(train(out, recipe, TestbedSpec(patch_size=patch)))
