"""What the testbed trains and monitors on, drawn from the seeded generator: stage 0's scenes and
per-patch labels, stage 1's multi-turn conversations and captions as padded batches, the fixed
pool of training scenes, and the training monitor's held-out questions.

Every function draws from the generator it is given, in a fixed order, so a recipe's seed fixes
every batch of a run (and a resumed run, restoring the generator's state, draws the same ones).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..benchmarks.jsonl import Sample, Split
from . import scenes, tasks
from .model import WordTokenizer, pixel_values, prompt_ids


def vision_batch(rng: np.random.Generator, n: int) -> tuple[list, torch.Tensor, list[dict]]:
    """Stage 0: n scenes of 1-8 objects, their pixels and their per-patch labels."""
    scs = [scenes.sample_scene(rng, int(rng.integers(1, 9))) for _ in range(n)]
    return scs, pixel_values([scenes.render(s) for s in scs]), [scenes.patch_labels(s) for s in scs]


class ScenePool:
    """A fixed set of training scenes (`Recipe.scene_pool`), drawn with replacement, like a finite
    instruction-tuning set seen for several epochs. Why: in the probes of family-phases-scene-pool, the
    same training step (32 images per step) bound a question word to its object 1.5-3x sooner on a
    fixed set of 6000 scenes than on a fresh scene every time; at 16 images per step it did not bind
    within 300 steps either way (data/testbed/ablations/family-phases-scene-pool/NOTES.md). Questions
    are still drawn afresh, so a scene comes back with other questions. The pool has 1-6 objects per
    scene; `draw` honours the objects curriculum by drawing among scenes with at most `max_obj` objects."""

    def __init__(self, size: int, seed: int):
        if size <= 0:
            raise ValueError(f"scene pool size must be positive, got {size}")
        rng = np.random.default_rng(seed + 3000)  # disjoint from the stream seeds used elsewhere
        self.scenes = [scenes.sample_scene(rng, int(rng.integers(1, 7))) for _ in range(size)]
        self._upto = {m: [s for s in self.scenes if len(s.objects) <= m] for m in range(1, 7)}

    def draw(self, rng: np.random.Generator, max_obj: int) -> scenes.Scene:
        cands = self._upto[max_obj] or self.scenes
        return cands[int(rng.integers(len(cands)))]


def draw_scenes(rng: np.random.Generator, n: int, max_obj: int, pool: ScenePool | None) -> list:
    """n scenes of at most `max_obj` objects: fresh ones, or drawn from `pool` when there is one."""
    if pool is None:
        return [scenes.sample_scene(rng, int(rng.integers(1, max_obj + 1))) for _ in range(n)]
    return [pool.draw(rng, max_obj) for _ in range(n)]


def conversation(scene, rng, tok: WordTokenizer, max_turns: int, families: tuple[str, ...] = tasks.FAMILIES):
    """Ids of a multi-turn conversation and its supervised positions (pos, target, kind).
    Turns ask distinct families while there are enough of them, then repeat them (new questions)."""
    n_img = scenes.GRID * scenes.GRID
    ids = [tok.bos_id] + [tok.image_id] * n_img
    targets = []
    families = list(families)
    rng.shuffle(families)
    turns = int(rng.integers(1, max_turns + 1))
    for fam in (families * max_turns)[:turns]:
        q = tasks.ask(scene, fam, rng)
        if q is None:
            continue
        ans = tok.index[q.answer]
        ids += tok.encode(q.text)
        targets.append((len(ids) - 1, ans, "aux"))  # last question word -> answer
        ids += tok.encode("?") + [tok.trigger_id]
        targets.append((len(ids) - 1, ans, "main"))  # trigger -> answer
        ids.append(ans)
        targets.append((len(ids) - 1, tok.eos_id, "eos"))
        ids.append(tok.eos_id)
    if not targets:  # no family of these fits the scene: ask another (every scene supports `text`)
        more = families if "text" in families else (*families, "text")
        return conversation(scene, rng, tok, max_turns, more)
    return ids, targets


@dataclass
class ConversationBatch:
    """Right-padded conversations and their weighted targets: row `rows[i]`, position `cols[i]`
    predicts `targets[i]` with loss weight `weights[i]`."""

    ids: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor


def conversation_batch(convs: list, tok: WordTokenizer, weights: dict[str, float]) -> ConversationBatch:
    """`conversation` outputs as one padded batch; a target of kind k has weight `weights[k]`, and
    kinds of weight 0 are left out."""
    width = max(len(c[0]) for c in convs)
    ids = torch.full((len(convs), width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows, cols, tgts, ws = [], [], [], []
    for b, (seq, targets) in enumerate(convs):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
        for pos, tgt, kind in targets:
            if weights[kind] > 0:
                rows.append(b), cols.append(pos), tgts.append(tgt), ws.append(weights[kind])
    return ConversationBatch(ids, mask, torch.tensor(rows), torch.tensor(cols), torch.tensor(tgts),
                             torch.tensor(ws))


def caption_batch(scs, tok: WordTokenizer):
    """Right-padded ids and mask of `<bos> <image>*144 what is there ? assistant: caption <eos>`, and the
    targets of positions start .. width-2 (the next word; -100 on padding): the trigger predicts the
    first caption word, the last caption word predicts <eos>."""
    prompt = prompt_ids(tok, tasks.CAPTION_PROMPT, scenes.GRID ** 2)
    seqs = [prompt + tok.encode(tasks.caption(s)) + [tok.eos_id] for s in scs]
    ids = torch.full((len(seqs), max(map(len, seqs))), tok.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, seq in enumerate(seqs):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
    start = len(prompt) - 1
    targets = ids[:, start + 1:].masked_fill(mask[:, start + 1:] == 0, -100)
    return ids, mask, targets, start


def heldout_split(n: int, seed: int = 3) -> Split:
    """An in-memory set of n questions (seed 3: training monitor; disjoint from val = 1, test = 2)."""
    rng = np.random.default_rng(seed)
    samples, images = [], {}
    for i in range(n):
        scene = scenes.sample_scene(rng, int(rng.integers(2, 7)))
        q = tasks.ask_any(scene, rng)
        images[str(i)] = scenes.render(scene)
        samples.append(Sample(id=str(i), image=str(i), question=q.text, answer=q.answer, family=q.family))
    split = Split(".", samples)
    split._cache.update(images)
    return split
