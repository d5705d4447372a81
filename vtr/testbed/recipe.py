"""The testbed's training recipe: every setting of `vtr testbed train` in one dataclass, whose
defaults are the shipped 8-layer checkpoint's recipe (`make testbed` reproduces it), the parsing of
its family phases, and the command line that runs a recipe (written to the checkpoint's COMMAND).

Why each default is what it is: the variants tried before it, one folder each with its NOTES.md
under data/testbed/ablations/ (named in the field comments below).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import tasks
from .model import TestbedSpec


@dataclass
class Recipe:
    seed: int = 0
    threads: int = 2
    vision_steps: int = 500
    vision_batch: int = 64
    vision_lr: float = 1e-3
    vision_norm: float = 0.0   # weight of stage 0's feature-scale loss (`train.feature_scale_loss`;
                               # vision-norm)
    lm_steps: int = 2800       # stage 1 (question-answer and interleaved captioning steps, after the opening)
    tune_steps: int = 900      # stage 2
    batch: int = 32            # images (conversations) per step: 16 did not bind a question to its object
                               # (batch32-pool6000)
    max_turns: int = 4
    lr: float = 2e-3
    warmup: int = 100
    aux_floor: float = 0.2     # auxiliary weight: 1 for the first half of stage 1, then down to this
    main_start: float = 0.3    # trigger weight: from this at the start to 1 at half of stage 1
    curriculum: float = 0.4    # fraction of stage 1 over which max objects grows 1 -> 6
    family_phases: str = ""    # stage 1 opens with these phases (see `family_schedule`), then all families
    caption_steps: int = 300   # stage 1 opens with this many captioning steps, before family phases
                               # (caption-opening300)
    caption_every: int = 4     # after those, every Nth step of stage 1 is a captioning step too (0: none;
                               # captions-every4)
    scene_pool: int = 6000     # stages 1-3 draw from this many fixed training scenes (0: a fresh scene each
                               # time; `batches.ScenePool`)
    eval_every: int = 500
    eval_questions: int = 300
    polish_steps: int = 0      # stage 3 (optional): trigger only, fresh optimiser, lower learning rate
    polish_lr: float = 5e-4
    checkpoint_every: int = 250  # stage 1-2 steps between resumable checkpoints (out/checkpoint/)
    expand_from: str = ""      # a finished testbed (name or folder) whose decoder initialises this one by
                               # block expansion (`expand.expand_decoder`); its vision tower is reused;
                               # "" = from scratch


def family_schedule(phases: str, lm_steps: int) -> list[tuple[tuple[str, ...], int]]:
    """Parse `Recipe.family_phases`: comma-separated `families:steps`, families joined by `+`, e.g.
    `attribute:200,position:150,count+exist:300`. The phases open stage 1 in order; the rest of
    stage 1 (and stage 2) asks every family. Why: mixed from the first step, a from-scratch decoder
    learns which patches a question names for no family but `text` in a CPU budget, while attribute
    alone learns it within a few hundred steps (NOTES.md of data/testbed/ablations/vision-norm,
    curriculum-attribute-first and family-phases-scene-pool; other families did not, alone, in the
    probes' budget)."""
    plan = []
    for part in filter(None, (x.strip() for x in phases.split(","))):
        name, sep, n = part.partition(":")
        fams = tuple(name.split("+"))
        unknown = [f for f in fams if f not in tasks.FAMILIES]
        if not sep or unknown or not n.isdigit() or int(n) <= 0:
            raise ValueError(f"family phase {part!r}: expected families:steps with families from "
                             f"{tasks.FAMILIES} joined by '+' and steps > 0")
        plan.append((fams, int(n)))
    if sum(n for _, n in plan) > lm_steps:
        raise ValueError(f"family phases take {sum(n for _, n in plan)} steps, "
                         f"more than stage 1's {lm_steps}")
    return plan


def train_command(recipe: Recipe, spec: TestbedSpec | None = None, vision_from: str | None = None) -> str:
    """The `vtr testbed train` command line that runs `recipe` with `spec` (default fields left out)."""
    cmd = f"vtr testbed train --seed {recipe.seed} --threads {recipe.threads}"
    for k, v in asdict(spec or TestbedSpec()).items():
        if v != getattr(TestbedSpec(), k):
            cmd += f" --spec {k}={v}"
    if vision_from is not None:
        cmd += f" --vision-from {vision_from}"
    default = Recipe()
    if recipe.vision_norm != default.vision_norm:
        cmd += f" --vision-norm {recipe.vision_norm:g}"
    if recipe.family_phases != default.family_phases:
        cmd += f" --family-phases {recipe.family_phases or repr('')}"
    for k, v in asdict(recipe).items():
        if k not in ("seed", "threads", "vision_norm", "family_phases") and v != getattr(default, k):
            cmd += f" --set {k}={v:g}" if isinstance(v, float) else f" --set {k}={v}"
    return cmd
