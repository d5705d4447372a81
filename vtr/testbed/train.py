"""The testbed's training loop (`vtr testbed train`), staged like LLaVA, on 2 CPU cores.

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
  per step, each from a fixed set of 6000 training scenes (new questions each time): the shipped
  recipe since the batch32-pool6000 variant, which answered `attribute` from the image where 16 fresh
  scenes per step did not (data/testbed/ablations/batch32-pool6000/NOTES.md).
  Stage 1 opens with `caption_steps` of captioning (data/testbed/ablations/caption-opening300/NOTES.md),
  as LLaVA's alignment stage trains on image-caption pairs: `what is there ? assistant:` -> every
  object's colour, shape and quadrant in reading order, then the word (`tasks.caption`); loss on
  every caption word. With `caption_every` (data/testbed/ablations/captions-every4/NOTES.md)
  captioning goes on through stage 1: every Nth step is a captioning step.
Stage 2 - trigger only: no auxiliary loss, learning rate decays to zero.
Stage 3 (optional, `polish_steps`) - more trigger-only steps with a fresh optimiser.
With `expand_from`, stages 1-2 start from a finished testbed's decoder expanded to this depth
(`expand.expand_decoder`) instead of a random one.

The settings are a `recipe.Recipe`, the batches come from `batches`, the resumable state is kept by
`checkpoints.Checkpoints`. Deterministic for a given seed and thread count (step counts, not
wall-clock budgets); an interrupted run resumes to the same weights as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..evaluation import evaluate
from . import scenes, tasks
from .batches import (ScenePool, caption_batch, conversation, conversation_batch, draw_scenes,
                      heldout_split, vision_batch)
from .checkpoints import Checkpoints, Clock, freeze_vision
from .expand import expand_decoder
from .model import TRIGGER, TestbedSpec, WordTokenizer, build_model, pixel_values, save_testbed
from .recipe import Recipe, family_schedule, train_command


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
        scs, px, labels = vision_batch(rng, recipe.vision_batch)
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


# --------------------------------------------------------------------------- stage 1 and 2

def _families_at(plan, step: int) -> tuple[str, ...]:
    for fams, n in plan:
        if step < n:
            return fams
        step -= n
    return tasks.FAMILIES


def _schedule(opt, total: int, warmup: int, hold: float = 0.3):
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 1.0 if t < hold else 0.5 * (1 + math.cos(math.pi * (t - hold) / (1 - hold)))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def _language_params(model) -> list:
    return list(model.model.multi_modal_projector.parameters()) + \
        list(model.model.language_model.parameters()) + list(model.lm_head.parameters())


def train_language(model, recipe: Recipe, log, heldout, ckpt: Checkpoints | None = None) -> None:
    tok = WordTokenizer()
    trainable = _language_params(model)
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
        loss = _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w, main_w, max_obj, fams,
                              pool)
        if step % 25 == 0:
            rec = {"stage": 1 if inner < recipe.lm_steps else 2, "step": step, "loss": loss,
                   "lr": sched.get_last_lr()[0], "aux_weight": aux_w, "main_weight": main_w,
                   "max_objects": max_obj}
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
    trainable = _language_params(model)
    opt = torch.optim.AdamW(trainable, lr=recipe.polish_lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = _schedule(opt, recipe.polish_steps, warmup=20, hold=0.0)
    rng = np.random.default_rng(recipe.seed + 2000)
    pool = ScenePool(recipe.scene_pool, recipe.seed) if recipe.scene_pool else None
    for step in tqdm(range(recipe.polish_steps), desc="stage 3: polish"):
        model.model.language_model.train()
        loss = _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w=0.0, main_w=1.0,
                              max_obj=6, pool=pool)
        if step % 25 == 0:
            log({"stage": 3, "step": step, "loss": loss, "lr": sched.get_last_lr()[0]})
        if (step + 1) % recipe.eval_every == 0 or step == recipe.polish_steps - 1:
            model.eval()
            res = heldout_metrics(model, heldout)
            log({"stage": 3, "step": step, "heldout": res})


def _caption_step(model, tok, rng, recipe, opt, sched, trainable, pool: ScenePool | None) -> float:
    """One optimiser step of captioning (see `tasks.caption`); returns the mean loss per caption word."""
    scs = draw_scenes(rng, recipe.batch, 6, pool)
    ids, mask, targets, start = caption_batch(scs, tok)
    px = pixel_values([scenes.render(s) for s in scs])
    hidden = model.model(input_ids=ids, attention_mask=mask, pixel_values=px,
                         use_cache=False).last_hidden_state
    logits = model.lm_head(hidden[:, start:-1])
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    return _optimise(loss, opt, sched, trainable)


def _optimise(loss: torch.Tensor, opt, sched, trainable) -> float:
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    sched.step()
    return loss.item()


def _language_step(model, tok, rng, recipe, opt, sched, trainable, aux_w: float, main_w: float,
                   max_obj: int, families: tuple[str, ...] = tasks.FAMILIES,
                   pool: ScenePool | None = None) -> float:
    """One optimiser step on a batch of multi-turn conversations; returns the loss."""
    scs = draw_scenes(rng, recipe.batch, max_obj, pool)
    convs = [conversation(s, rng, tok, recipe.max_turns, families) for s in scs]
    batch = conversation_batch(convs, tok, {"main": main_w, "aux": aux_w, "eos": 0.1})
    px = pixel_values([scenes.render(s) for s in scs])
    hidden = model.model(input_ids=batch.ids, attention_mask=batch.mask, pixel_values=px,
                         use_cache=False).last_hidden_state
    logits = model.lm_head(hidden[batch.rows, batch.cols])
    w = batch.weights
    loss = (F.cross_entropy(logits, batch.targets, reduction="none") * w).sum() / w.sum()
    return _optimise(loss, opt, sched, trainable)


# --------------------------------------------------------------------------- a whole run

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
    plain = Clock()

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
        freeze_vision(model)
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


def _checkpoint_folder(name: str) -> Path:
    from ..paths import TESTBEDS, testbed_model_dir
    return testbed_model_dir(name) if name in TESTBEDS else Path(name)


def finalize(out: Path, recipe: Recipe | None = None, slice_size: int = 96, spec: TestbedSpec | None = None,
             vision_from: str | None = None) -> dict:
    """Write what makes a checkpoint checkable: its sha256, the command that produced it, and its
    accuracy on the first `slice_size` test questions (the test suite reproduces that number)."""
    import hashlib

    from .data import load
    from .model import load_testbed
    from .runner import TestbedRunner

    recipe = recipe or Recipe()
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    (out / "model.safetensors.sha256").write_text(f"{digest}  model.safetensors\n")
    (out / "COMMAND").write_text(f"{train_command(recipe, spec, vision_from)}\n# {torch.__version__}, "
                                 f"{recipe.threads} threads; see training.json for the recipe\n")
    model, _ = load_testbed(out)
    res = evaluate(TestbedRunner(model), load("test").subset(slice_size), progress=False)["metrics"]
    (out / "eval_slice.json").write_text(json.dumps(res, indent=1) + "\n")
    return res
