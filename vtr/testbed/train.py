"""Training recipe of the testbed (`vtr testbed train`), staged like LLaVA, on 2 CPU cores.

Stage 0 - vision pretraining (stands in for CLIP): the CLIP vision tower learns dense per-patch
  targets the generator knows (colour, shape, size, word, object centre, the patch's own row and
  column) plus a multi-hot scene summary on CLS. Then it is frozen, as LLaVA freezes CLIP.
Stage 1 - instruction tuning of projector + decoder on multi-turn conversations about one image
  (1-4 questions, as in LLaVA's instruction data: the 144 image tokens are paid once per image).
  The answer is predicted at the constant trigger `assistant:`; an auxiliary loss also asks for it
  at the last question word for the first part of training, decayed to zero. Why: from scratch a
  decoder does not find the two-step route trigger -> question -> image in a CPU budget (see the
  testbed chapter); the auxiliary target builds the retrieval first, the trigger then copies it.
  Objects per image grow 1 -> 6 over the first 40% of the stage (curriculum). 32 conversations
  per step, each from a fixed set of 6000 training scenes (new questions each time): the shipped recipe
  since the batch32-pool6000 variant, which answered `attribute` from the image where 16 fresh
  scenes per step did not (data/testbed/ablations/batch32-pool6000/NOTES.md).
  Stage 1 opens with `caption_steps` of captioning (caption-opening300), as LLaVA's alignment stage trains on
  image-caption pairs: `what is there ? assistant:` -> every object's colour, shape and quadrant in
  reading order, then the word (`tasks.caption`); loss on every caption word. With `caption_every`
  (captions-every4) captioning goes on through stage 1: every Nth step is a captioning step.
Stage 2 - trigger only: no auxiliary loss, learning rate decays to zero.
With `expand_from`, stages 1-2 start from a finished testbed's decoder expanded to this depth
(`expand_decoder`) instead of a random one: how the 16-layer testbed is made, because from scratch
its decoder did not bind questions to objects within the 8-layer recipe's steps
(data/testbed/ablations/deep16-from-scratch/).

Deterministic for a given seed and thread count (step counts, not wall-clock budgets).
Resumable: the vision tower is saved after stage 0, and stages 1-2 every `checkpoint_every` steps
(weights, optimiser, schedule, random states, log position) under `out/checkpoint/`; running the
same recipe again continues from there and ends with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..evaluation import evaluate
from . import data, scenes, tasks
from .model import TRIGGER, TestbedSpec, WordTokenizer, build_model, pixel_values, prompt_ids, save_testbed


@dataclass
class Recipe:
    seed: int = 0
    threads: int = 2
    vision_steps: int = 500
    vision_batch: int = 64
    vision_lr: float = 1e-3
    vision_norm: float = 0.0   # weight of the feature-scale loss of stage 0 (see `feature_scale_loss`)
    lm_steps: int = 2800       # stage 1 (question-answer and interleaved captioning steps, after the opening captions)
    tune_steps: int = 900      # stage 2
    batch: int = 32            # images (conversations) per step: 16 did not bind a question to its object (batch32-pool6000)
    max_turns: int = 4
    lr: float = 2e-3
    warmup: int = 100
    aux_floor: float = 0.2     # auxiliary weight: 1 for the first half of stage 1, then down to this
    main_start: float = 0.3    # trigger weight: from this at the start to 1 at half of stage 1
    curriculum: float = 0.4    # fraction of stage 1 over which max objects grows 1 -> 6
    family_phases: str = ""    # stage 1 opens with these phases (see `family_schedule`), then all families
    caption_steps: int = 300   # stage 1 opens with this many captioning steps (before family phases; caption-opening300)
    caption_every: int = 4     # after those, every Nth step of stage 1 is a captioning step too (0: none; captions-every4)
    scene_pool: int = 6000     # stages 1-3 draw from this many fixed training scenes (0 = a fresh scene each time)
    eval_every: int = 500
    eval_questions: int = 300
    polish_steps: int = 0      # stage 3 (optional): trigger only, fresh optimiser, lower learning rate
    polish_lr: float = 5e-4
    checkpoint_every: int = 250  # stage 1-2 steps between resumable checkpoints (out/checkpoint/)
    expand_from: str = ""      # a finished testbed (name or folder) whose decoder initialises this one by block
                               # expansion (`expand_decoder`); its vision tower is reused; "" = from scratch


# --------------------------------------------------------------------------- stage 0

def _vision_heads(hidden: int) -> torch.nn.ModuleDict:
    heads = {k: torch.nn.Linear(hidden, n) for k, n in scenes.LABEL_SPACES.items()}
    heads["summary"] = torch.nn.Linear(hidden, len(scenes.COLOURS) * len(scenes.SHAPES) + len(scenes.WORDS))
    return torch.nn.ModuleDict(heads)


def feature_scale_loss(h: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of mean_d(h)^2 + (rms_d(h) - 1)^2: pulls each token of the last hidden state
    toward what a LayerNorm would output. Why: LLaVA's projector reads that pre-LayerNorm residual as
    it is; at its raw scale (per-token norm ~60, varying by token) a decoder trained on it does not
    learn which patch a question word refers to, while the same features layer-normalised it does
    (data/testbed/ablations/binding-probe-features/NOTES.md)."""
    mean = h.mean(-1)
    rms = h.pow(2).mean(-1).clamp_min(1e-8).sqrt()
    return (mean.pow(2) + (rms - 1).pow(2)).mean()


def train_vision(model, recipe: Recipe, log) -> None:
    tower = model.model.vision_tower
    torch.manual_seed(recipe.seed + 500)  # stage 0 does not depend on the decoder's size
    heads = _vision_heads(tower.config.hidden_size)
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=recipe.vision_lr, weight_decay=0.01)
    sched = _schedule(opt, recipe.vision_steps, warmup=50)
    rng = np.random.default_rng(recipe.seed + 500)
    tower.train()
    for step in tqdm(range(recipe.vision_steps), desc="stage 0: vision"):
        scs = [scenes.sample_scene(rng, int(rng.integers(1, 9))) for _ in range(recipe.vision_batch)]
        px = pixel_values([scenes.render(s) for s in scs])
        labels = [scenes.patch_labels(s) for s in scs]
        h = tower(px).last_hidden_state
        patches, cls = h[:, 1:], h[:, 0]
        losses = {}
        for k in scenes.LABEL_SPACES:
            y = torch.from_numpy(np.stack([lab[k] for lab in labels]))
            w = 2.0 if k in ("word", "shape") else 1.0
            losses[k] = w * F.cross_entropy(heads[k](patches).flatten(0, 1), y.flatten())
        summ = torch.from_numpy(np.stack([scenes.scene_summary_labels(s) for s in scs]))
        losses["summary"] = F.binary_cross_entropy_with_logits(heads["summary"](cls), summ)
        if recipe.vision_norm > 0:
            losses["scale"] = recipe.vision_norm * feature_scale_loss(h)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == recipe.vision_steps - 1:
            with torch.no_grad():
                acc = {}
                for k in ("colour", "shape", "word"):
                    y = torch.from_numpy(np.stack([lab[k] for lab in labels]))
                    pred = heads[k](patches).argmax(-1)
                    fg = y > 0
                    acc[k] = float((pred[fg] == y[fg]).float().mean())
            rms = float(h.detach().pow(2).mean(-1).sqrt().mean())
            log({"stage": 0, "step": step, "loss": loss.item(), "fg_patch_acc": acc, "feature_rms": rms})
    freeze_vision(model)


def freeze_vision(model) -> None:
    tower = model.model.vision_tower
    for p in tower.parameters():
        p.requires_grad_(False)
    tower.eval()


def save_vision(model, path: Path) -> None:
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.model.vision_tower.state_dict().items()}, str(path))


def load_vision(model, path: Path) -> None:
    from safetensors.torch import load_file
    model.model.vision_tower.load_state_dict(load_file(str(path)))
    freeze_vision(model)


# --------------------------------------------------------------------------- stage 1 and 2

def family_schedule(phases: str, lm_steps: int) -> list[tuple[tuple[str, ...], int]]:
    """Parse `Recipe.family_phases`: comma-separated `families:steps`, families joined by `+`, e.g.
    `attribute:200,position:150,count+exist:300`. The phases open stage 1 in order; the rest of
    stage 1 (and stage 2) asks every family. Why: mixed from the first step, a from-scratch decoder
    learns which patches a question names for no family but `text` in a CPU budget, while attribute
    alone learns it within a few hundred steps (data/testbed/ablations/vision-norm,
    curriculum-attribute-first, family-phases-scene-pool; other families did not, alone, in the
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
        raise ValueError(f"family phases take {sum(n for _, n in plan)} steps, more than stage 1's {lm_steps}")
    return plan


def _families_at(plan, step: int) -> tuple[str, ...]:
    for fams, n in plan:
        if step < n:
            return fams
        step -= n
    return tasks.FAMILIES


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
        return conversation(scene, rng, tok, max_turns, families if "text" in families else (*families, "text"))
    return ids, targets


class ScenePool:
    """A fixed set of training scenes (`Recipe.scene_pool`), drawn with replacement, like a finite
    instruction-tuning set seen for several epochs. Why: in the probes of family-phases-scene-pool, the same
    training step (32 images per step) bound a question word to its object 1.5-3x sooner on a fixed
    set of 6000 scenes than on a fresh scene every time; at 16 images per step it did not bind within
    300 steps either way (data/testbed/ablations/family-phases-scene-pool/NOTES.md). Questions are still
    drawn afresh, so a scene comes back with other questions. The pool has 1-6 objects per scene;
    `draw` honours the objects curriculum by drawing among scenes with at most `max_obj` objects."""

    def __init__(self, size: int, seed: int):
        if size <= 0:
            raise ValueError(f"scene pool size must be positive, got {size}")
        rng = np.random.default_rng(seed + 3000)  # disjoint from the stream seeds used elsewhere
        self.scenes = [scenes.sample_scene(rng, int(rng.integers(1, 7))) for _ in range(size)]
        self._upto = {m: [s for s in self.scenes if len(s.objects) <= m] for m in range(1, 7)}

    def draw(self, rng: np.random.Generator, max_obj: int) -> "scenes.Scene":
        cands = self._upto[max_obj] or self.scenes
        return cands[int(rng.integers(len(cands)))]


def _schedule(opt, total: int, warmup: int, hold: float = 0.3):
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 1.0 if t < hold else 0.5 * (1 + math.cos(math.pi * (t - hold) / (1 - hold)))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def train_language(model, recipe: Recipe, log, heldout, ckpt: "Checkpoints | None" = None) -> None:
    tok = WordTokenizer()
    trainable = list(model.model.multi_modal_projector.parameters()) + \
        list(model.model.language_model.parameters()) + list(model.lm_head.parameters())
    opt = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=0.01, betas=(0.9, 0.98))
    cap = recipe.caption_steps
    total = cap + recipe.lm_steps + recipe.tune_steps
    sched = _schedule(opt, total, recipe.warmup, hold=0.5)
    rng = np.random.default_rng(recipe.seed + 1000)
    torch.manual_seed(recipe.seed + 1000)
    plan = family_schedule(recipe.family_phases, recipe.lm_steps)
    pool = ScenePool(recipe.scene_pool, recipe.seed) if recipe.scene_pool else None
    start = ckpt.resume_language(model, opt, sched, rng) if ckpt is not None else 0
    for step in tqdm(range(start, total), initial=start, total=total, desc="stage 1-2: language"):
        if ckpt is not None and step > start and step % recipe.checkpoint_every == 0:
            ckpt.save_language(step, model, opt, sched, rng)
        model.model.language_model.train()
        inner = step - cap  # step within the question-answer part of stages 1-2 (< 0: opening captions)
        if inner < 0 or _interleaved_caption(recipe, inner):  # captioning: scenes with 1-6 objects throughout
            loss = _caption_step(model, tok, rng, recipe, opt, sched, trainable, pool)
            if step % 25 == 0:
                log({"stage": 1, "step": step, "loss": loss, "lr": sched.get_last_lr()[0], "task": "caption"})
            _maybe_evaluate(model, recipe, log, heldout, step, total, stage=1)
            continue
        frac = inner / recipe.lm_steps
        max_obj = 6 if frac >= recipe.curriculum else 1 + int(5 * frac / recipe.curriculum)
        if inner >= recipe.lm_steps:  # stage 2: trigger only
            aux_w, main_w = 0.0, 1.0
        else:
            aux_w = 1.0 if frac < 0.5 else 1.0 - (1.0 - recipe.aux_floor) * (frac - 0.5) / 0.5
            main_w = min(1.0, recipe.main_start + (1.0 - recipe.main_start) * frac / 0.5)
        fams = _families_at(plan, inner)
        loss = _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w, main_w, max_obj, fams, pool)
        if step % 25 == 0:
            rec = {"stage": 1 if inner < recipe.lm_steps else 2, "step": step, "loss": loss,
                   "lr": sched.get_last_lr()[0], "aux_weight": aux_w, "main_weight": main_w, "max_objects": max_obj}
            if plan:
                rec["families"] = "+".join(fams) if fams != tasks.FAMILIES else "all"
            log(rec)
        _maybe_evaluate(model, recipe, log, heldout, step, total, stage=1 if inner < recipe.lm_steps else 2)


def _interleaved_caption(recipe: Recipe, inner: int) -> bool:
    """Whether step `inner` of the question part of stage 1 is a captioning step (`Recipe.caption_every`):
    the last of every `caption_every` steps, never in stage 2. The question steps keep their place in
    the curriculum and loss schedules (counted by `inner`), so they number fewer by 1/caption_every."""
    n = recipe.caption_every
    if n < 0:
        raise ValueError(f"caption_every must be >= 0 (0: no interleaved captions), got {n}")
    return n > 0 and inner < recipe.lm_steps and inner % n == n - 1


def heldout_metrics(model, heldout) -> dict:
    """The held-out metrics of the model being trained: the book's evaluation loop and runner."""
    from .runner import TestbedRunner

    return evaluate(TestbedRunner(model), heldout, progress=False)["metrics"]


def _maybe_evaluate(model, recipe, log, heldout, step: int, total: int, stage: int) -> None:
    if (step + 1) % recipe.eval_every == 0 or step == total - 1:
        model.eval()
        res = heldout_metrics(model, heldout)
        log({"stage": stage, "step": step, "heldout": res})


def train_polish(model, recipe: Recipe, log, heldout) -> None:
    """Stage 3: more trigger-only steps on 1-6 objects with a fresh AdamW and a short cosine schedule.
    Starting from a saved checkpoint gives the same result as running on in one process."""
    if recipe.polish_steps <= 0:
        return
    tok = WordTokenizer()
    trainable = list(model.model.multi_modal_projector.parameters()) + \
        list(model.model.language_model.parameters()) + list(model.lm_head.parameters())
    opt = torch.optim.AdamW(trainable, lr=recipe.polish_lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = _schedule(opt, recipe.polish_steps, warmup=20, hold=0.0)
    rng = np.random.default_rng(recipe.seed + 2000)
    pool = ScenePool(recipe.scene_pool, recipe.seed) if recipe.scene_pool else None
    for step in tqdm(range(recipe.polish_steps), desc="stage 3: polish"):
        model.model.language_model.train()
        loss = _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w=0.0, main_w=1.0, max_obj=6,
                              pool=pool)
        if step % 25 == 0:
            log({"stage": 3, "step": step, "loss": loss, "lr": sched.get_last_lr()[0]})
        if (step + 1) % recipe.eval_every == 0 or step == recipe.polish_steps - 1:
            model.eval()
            res = heldout_metrics(model, heldout)
            log({"stage": 3, "step": step, "heldout": res})


def _scenes(rng, recipe, max_obj: int, pool: "ScenePool | None"):
    if pool is None:
        return [scenes.sample_scene(rng, int(rng.integers(1, max_obj + 1))) for _ in range(recipe.batch)]
    return [pool.draw(rng, max_obj) for _ in range(recipe.batch)]


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


def _caption_step(model, tok, rng, recipe, opt, sched, trainable, pool: "ScenePool | None") -> float:
    """One optimiser step of captioning (see `tasks.caption`); returns the mean loss per caption word."""
    scs = _scenes(rng, recipe, 6, pool)
    ids, mask, targets, start = caption_batch(scs, tok)
    hidden = model.model(input_ids=ids, attention_mask=mask,
                         pixel_values=pixel_values([scenes.render(s) for s in scs]), use_cache=False).last_hidden_state
    loss = F.cross_entropy(model.lm_head(hidden[:, start:-1]).flatten(0, 1), targets.flatten(), ignore_index=-100)
    return _optimise(loss, opt, sched, trainable)


def _optimise(loss: torch.Tensor, opt, sched, trainable) -> float:
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    sched.step()
    return loss.item()


def _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w: float, main_w: float,
                   max_obj: int, families: tuple[str, ...] = tasks.FAMILIES, pool: ScenePool | None = None) -> float:
    """One optimiser step on a batch of multi-turn conversations; returns the loss."""
    scs = _scenes(rng, recipe, max_obj, pool)
    convs = [conversation(s, rng, tok, recipe.max_turns, families) for s in scs]
    width = max(len(c[0]) for c in convs)
    ids = torch.full((len(convs), width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows, cols, tgts, weights = [], [], [], []
    for b, (seq, targets) in enumerate(convs):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
        for pos, tgt, kind in targets:
            w = {"main": main_w, "aux": aux_w, "eos": 0.1}[kind]
            if w > 0:
                rows.append(b), cols.append(pos), tgts.append(tgt), weights.append(w)
    hidden = model.model(input_ids=ids, attention_mask=mask,
                         pixel_values=pixel_values([scenes.render(s) for s in scs]), use_cache=False).last_hidden_state
    logits = model.lm_head(hidden[torch.tensor(rows), torch.tensor(cols)])
    w = torch.tensor(weights)
    loss = (F.cross_entropy(logits, torch.tensor(tgts), reduction="none") * w).sum() / w.sum()
    return _optimise(loss, opt, sched, trainable)


def heldout_split(n: int, seed: int = 3) -> "data.Split":
    """An in-memory set of n questions (seed 3: training monitor; disjoint from val = 1, test = 2)."""
    from ..benchmarks.jsonl import Sample, Split

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


class _Clock:
    """Seconds of training so far, carried over from a checkpoint on resume."""

    def __init__(self, elapsed: float = 0.0):
        self.t0 = time.time() - elapsed

    def __call__(self) -> float:
        return time.time() - self.t0


# Recipe and spec fields stage 0 depends on: a run that changes only later stages, or only the
# decoder's size, reuses a saved vision tower (stage 0 never sees the decoder).
VISION_FIELDS = ("seed", "threads", "vision_steps", "vision_batch", "vision_lr", "vision_norm")
VISION_SPEC_FIELDS = ("vision_hidden", "vision_layers", "vision_heads", "image_size", "patch_size")


def vision_identity(recipe: dict, spec: dict, torch_version: str) -> dict:
    """What a trained vision tower depends on: stage 0's recipe fields, the tower's sizes, torch."""
    return {"recipe": {k: recipe[k] for k in VISION_FIELDS}, "spec": {k: spec[k] for k in VISION_SPEC_FIELDS},
            "torch": torch_version}


class Checkpoints:
    """Resumable state of one training run under `out/checkpoint/`, valid only for the same recipe and
    spec: another spec, torch or stage-0 setting starts afresh; other stage 1-3 settings keep the
    saved vision tower and restart stage 1. Files are written to a temporary name, then renamed."""

    def __init__(self, out: Path, recipe: Recipe, spec: TestbedSpec, log_path: Path):
        self.dir, self.log_path = out / "checkpoint", log_path
        full = asdict(recipe)
        self.identity = {"vision": vision_identity(full, asdict(spec), torch.__version__),
                         "recipe": full, "spec": asdict(spec)}
        self.clock = _Clock()  # the log's clock, carried over on resume
        ident = self.dir / "identity.json"
        saved = json.loads(ident.read_text()) if ident.exists() else self.identity
        if saved.get("vision") != self.identity["vision"]:
            tqdm.write(f"{self.dir}: saved for another spec, torch or stage 0; starting afresh")
            self.clear()
        elif saved.get("recipe") != full or saved.get("spec") != asdict(spec):
            tqdm.write(f"{self.dir}: saved for other stage 1-3 settings or decoder sizes; keeping the vision tower only")
            (self.dir / "language.pt").unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        ident.write_text(json.dumps(self.identity, indent=1))
        if not self.has_vision():
            log_path.write_text("")

    def clear(self) -> None:
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write(self, name: str, save) -> None:
        tmp = self.dir / (name + ".tmp")
        save(tmp)
        tmp.replace(self.dir / name)

    def _log_bytes(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _check_log(self, size: int) -> None:  # e.g. only checkpoint/ was copied to a new output folder
        if self._log_bytes() < size:
            raise ValueError(f"{self.dir} was saved with {size} bytes of {self.log_path.name}, but "
                             f"{self.log_path} has {self._log_bytes()}: copy the whole output folder "
                             f"(log and checkpoint/) to resume, or delete {self.dir} to start afresh")

    def _rewind_log(self, size: int) -> None:  # drop what was logged after the checkpoint
        with open(self.log_path, "r+b") as f:
            f.truncate(size)

    def has_vision(self) -> bool:
        return (self.dir / "vision.safetensors").exists()

    def save_vision(self, model, elapsed: float) -> None:
        self._write("vision.safetensors", lambda p: save_vision(model, p))
        (self.dir / "vision.json").write_text(json.dumps({"log_bytes": self._log_bytes(), "elapsed": elapsed}))

    def reuse_vision(self, source: Path) -> None:
        """Start from the vision tower of the finished checkpoint in `source` instead of running stage 0:
        its tower and its log's stage-0 records are written here as `save_vision` would have written
        them. Refused unless `source` was trained with the same stage-0 recipe, tower sizes and torch."""
        from safetensors.torch import load_file, save_file

        meta = json.loads((source / "training.json").read_text())
        theirs = vision_identity(meta["recipe"], meta["spec"], meta["torch"])
        if theirs != self.identity["vision"]:
            diff = sorted(f"{part}.{k}" for part in ("recipe", "spec") for k in theirs[part]
                          if theirs[part][k] != self.identity["vision"][part][k])
            if theirs["torch"] != self.identity["vision"]["torch"]:
                diff.append("torch")
            raise ValueError(f"--vision-from {source}: its stage 0 differs from this run's in {', '.join(diff)}")
        records = [line for line in (source / "training_log.jsonl").read_text().splitlines()
                   if json.loads(line)["stage"] == 0]
        self.log_path.write_text("".join(r + "\n" for r in records))
        prefix = "vision_tower."
        weights = load_file(str(source / "model.safetensors"))
        tower = {k[len(prefix):]: v.contiguous() for k, v in weights.items() if k.startswith(prefix)}
        self._write("vision.safetensors", lambda p: save_file(tower, str(p)))
        (self.dir / "vision.json").write_text(json.dumps(
            {"log_bytes": self._log_bytes(), "elapsed": json.loads(records[-1])["seconds"], "from": str(source)}))

    def resume_vision(self, model) -> bool:
        if not self.has_vision():
            return False
        meta = json.loads((self.dir / "vision.json").read_text())
        self._check_log(meta["log_bytes"])
        load_vision(model, self.dir / "vision.safetensors")
        if not (self.dir / "language.pt").exists():
            self._rewind_log(meta["log_bytes"])
            self.clock = _Clock(meta["elapsed"])
        tqdm.write(f"stage 0: vision tower from {self.dir}")
        return True

    def save_language(self, step: int, model, opt, sched, rng) -> None:
        state = {"step": step, "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                 "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "log_bytes": self._log_bytes(), "elapsed": self.clock()}
        self._write("language.pt", lambda p: torch.save(state, p))

    def resume_language(self, model, opt, sched, rng) -> int:
        path = self.dir / "language.pt"
        if not path.exists():
            return 0
        state = torch.load(path, weights_only=False)
        self._check_log(state["log_bytes"])
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self._rewind_log(state["log_bytes"])
        self.clock = _Clock(state["elapsed"])
        tqdm.write(f"stage 1-2: resumed at step {state['step']} from {path}")
        return state["step"]


def train(out: Path, recipe: Recipe | None = None, spec: TestbedSpec | None = None,
          resume_from: Path | None = None, vision_from: str | None = None) -> dict:
    """Run all stages and save the checkpoint, log and recipe under `out`; an interrupted run of the
    same recipe continues from `out/checkpoint/` (removed once the model is saved).
    `resume_from`: a checkpoint of stages 0-2 of the same recipe; only stage 3 runs (log appended).
    `vision_from`: a shipped testbed's name (`paths.TESTBEDS`) or a finished checkpoint's folder with
    the same stage 0 (e.g. another decoder depth) whose vision tower is reused instead of running
    stage 0 (`Checkpoints.reuse_vision`)."""
    recipe, spec = recipe or Recipe(), spec or TestbedSpec()
    given = vision_from  # what the command line said (the COMMAND file repeats it)
    if recipe.expand_from and vision_from is None:
        vision_from = recipe.expand_from  # an expanded decoder keeps the tower it was trained with
    if vision_from is not None and not (_checkpoint_folder(vision_from) / "training.json").exists():
        raise FileNotFoundError(f"--vision-from {vision_from}: no finished testbed checkpoint there "
                                f"(no {_checkpoint_folder(vision_from) / 'training.json'})")
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "training_log.jsonl"
    ckpt = Checkpoints(out, recipe, spec, log_path) if resume_from is None else None
    plain = _Clock()

    def clock() -> float:
        return (ckpt.clock if ckpt is not None else plain)()

    def log(rec):
        rec["seconds"] = round(clock(), 1)
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if "heldout" in rec or rec.get("step", 1) % 100 == 0:
            tqdm.write(json.dumps(rec))

    if resume_from is None:
        model = build_model(spec, seed=recipe.seed)
        if vision_from is not None and not ckpt.has_vision():
            ckpt.reuse_vision(_checkpoint_folder(vision_from))
        if not ckpt.resume_vision(model):
            train_vision(model, recipe, log)
            ckpt.save_vision(model, clock())
        if recipe.expand_from:  # overwritten by a saved stage 1-2 checkpoint on resume
            from .model import load_testbed
            expand_decoder(model, load_testbed(_checkpoint_folder(recipe.expand_from))[0])
        train_language(model, recipe, log, heldout_split(recipe.eval_questions), ckpt)
    else:  # stages 0-2 were saved by an earlier run of the same recipe: continue with stage 3
        from transformers import LlavaForConditionalGeneration
        model = LlavaForConditionalGeneration.from_pretrained(resume_from, attn_implementation="sdpa")
        for p in model.model.vision_tower.parameters():
            p.requires_grad_(False)
        model.model.vision_tower.eval()
    train_polish(model, recipe, log, heldout_split(recipe.eval_questions))
    model.eval()
    meta = {"recipe": asdict(recipe), "spec": asdict(spec), "seconds": round(clock(), 1),
            "torch": torch.__version__, "trigger": TRIGGER}
    if vision_from is not None:
        meta["vision_from"] = str(vision_from)
    save_testbed(model, WordTokenizer(), spec, out, extra=meta)
    if ckpt is not None:
        ckpt.clear()
    finalize(out, recipe, spec=spec, vision_from=given)
    return meta


def expand_decoder(model, source) -> None:
    """Initialise `model`'s projector, embeddings, decoder, norm and LM head from `source`, a testbed
    with a divisor of this decoder's depth, by block expansion (LLaMA Pro, Wu et al. 2024): source
    layer i becomes layers r i .. r i + r - 1 (r = depth ratio), each a copy of it, the copies after
    the first with their attention output and MLP down projections zeroed, so that they start as the
    identity (a pre-norm residual block whose outputs are zero) and the expanded model computes
    exactly what `source` computes. Training then moves every layer, the new ones from there."""
    src, dst = source.model.language_model, model.model.language_model
    n_src, n_dst = len(src.layers), len(dst.layers)
    if n_dst % n_src:
        raise ValueError(f"block expansion needs a multiple of the source depth: {n_dst} layers from {n_src}")
    r = n_dst // n_src
    with torch.no_grad():
        for i, layer in enumerate(src.layers):
            for j in range(r):
                new = dst.layers[r * i + j]
                new.load_state_dict(layer.state_dict())
                if j:
                    for proj in (new.self_attn.o_proj, new.mlp.down_proj):
                        proj.weight.zero_()
                        if proj.bias is not None:
                            proj.bias.zero_()
        dst.embed_tokens.load_state_dict(src.embed_tokens.state_dict())
        dst.norm.load_state_dict(src.norm.state_dict())
        model.lm_head.load_state_dict(source.lm_head.state_dict())
        model.model.multi_modal_projector.load_state_dict(source.model.multi_modal_projector.state_dict())


def _checkpoint_folder(name: str) -> Path:
    from ..paths import TESTBEDS, testbed_model_dir
    return testbed_model_dir(name) if name in TESTBEDS else Path(name)


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


def finalize(out: Path, recipe: Recipe | None = None, slice_size: int = 96, spec: TestbedSpec | None = None,
             vision_from: str | None = None) -> dict:
    """Write what makes a checkpoint checkable: its sha256, the command that produced it, and its
    accuracy on the first `slice_size` test questions (the test suite reproduces that number)."""
    import hashlib

    from .data import load
    from .runner import TestbedRunner
    from .model import load_testbed

    recipe = recipe or Recipe()
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    (out / "model.safetensors.sha256").write_text(f"{digest}  model.safetensors\n")
    (out / "COMMAND").write_text(f"{train_command(recipe, spec, vision_from)}\n"
                                 f"# {torch.__version__}, {recipe.threads} threads; see training.json for the recipe\n")
    model, _ = load_testbed(out)
    res = evaluate(TestbedRunner(model), load("test").subset(slice_size), progress=False)["metrics"]
    (out / "eval_slice.json").write_text(json.dumps(res, indent=1) + "\n")
    return res
