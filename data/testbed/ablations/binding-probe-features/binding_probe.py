"""Binding probe (towerfile: added for vision-norm, phases: for curriculum-attribute-first): how fast does a from-scratch decoder learn to *bind* a question word to image patches?

Fast loop: the shipped (frozen) vision tower's patch features are computed once for a pool of
scenes, so a step costs only projector + decoder. Each run trains a fresh projector + Llama decoder
(the testbed's config) on the chosen families and prints held-out accuracy every `eval` steps.

    python binding_probe.py fams=attribute objs=2-2 fmt=qword steps=1500 lr=2e-3 batch=32 theta=10000

phases: optional curriculum, e.g. `phases=attribute:250,all:500` (families per phase, `all` = fams;
    step counts per phase; overrides steps). Held-out questions always cover fams.
fams may include probe-only variants (see `ask`): position1. A phase named `lang` trains text only:
    questions of all fams about the scene described in words (`describe`), no image.
fmt: qword (answer at the last question word) | trigger (`... ? assistant:`).
caption (added for caption-opening300): a phase named `caption` trains LLaVA-stage-1-style captioning instead of questions:
    `<image>*144 what is there ? assistant:` -> `vtr.testbed.tasks.caption` (`<colour> <shape> <quadrant>`
    per object in reading order of the cells, then `written <word>`) and <eos>; loss on every caption word.
width, heads, inter (added for caption-opening300): decoder hidden size, attention heads, MLP size (default: the testbed's).
towerfile: optional safetensors of another vision tower (save_vision format).
feats: tower (shipped frozen vision tower) | tower_ln (+ its post_layernorm) | tower_std (standardised) | ideal (one-hot per-patch labels, as in the first prototype check).
Exploratory, not part of vtr.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vtr.testbed import scenes, tasks
from vtr.testbed.model import TestbedSpec, WordTokenizer, build_config, pixel_values
from transformers import LlavaForConditionalGeneration

args = dict(a.split("=") for a in sys.argv[1:])
fams = args.get("fams", "attribute").split(",")
lo, hi = (int(x) for x in args.get("objs", "2-2").split("-"))
fmt = args.get("fmt", "qword")
steps, batch, lr = int(args.get("steps", 1500)), int(args.get("batch", 32)), float(args.get("lr", 2e-3))
theta = float(args.get("theta", 10000))
pool = int(args.get("pool", 8000))
every = int(args.get("eval", 250))
layers = int(args.get("layers", 8))
torch.set_num_threads(2)
torch.manual_seed(0)
tok = WordTokenizer()

spec = TestbedSpec(text_layers=layers)
spec.text_hidden = int(args.get("width", spec.text_hidden))
spec.text_heads = int(args.get("heads", spec.text_heads))
spec.text_intermediate = int(args.get("inter", 4 * spec.text_hidden))
cfg = build_config(spec)
cfg.text_config.rope_parameters = {"rope_type": "default", "rope_theta": theta}
cfg._attn_implementation = "sdpa"
m = LlavaForConditionalGeneration(cfg)
sd = load_file("/work/main/data/testbed/model/model.safetensors")
m.model.vision_tower.load_state_dict({k[len("vision_tower."):]: v for k, v in sd.items()
                                      if k.startswith("vision_tower.")})
if "towerfile" in args:  # a vision tower saved by `vtr.testbed.train.save_vision` (e.g. another stage 0)
    m.model.vision_tower.load_state_dict(load_file(args["towerfile"]))
tower = m.model.vision_tower.eval()
proj, lm, head = m.model.multi_modal_projector, m.model.language_model, m.lm_head
emb = lm.get_input_embeddings()


feats_kind = args.get("feats", "tower")


def ideal_features(s):
    """Per-patch one-hot labels the generator knows (what stage 0 teaches), zero-padded to 192."""
    lab = scenes.patch_labels(s)
    parts = [F.one_hot(torch.from_numpy(lab[k]), n) for k, n in scenes.LABEL_SPACES.items()]
    x = torch.cat(parts, -1).float()
    return F.pad(x, (0, 192 - x.shape[-1]))


@torch.no_grad()
def make_pool(n, seed):
    rng = np.random.default_rng(seed)
    scs = [scenes.sample_scene(rng, int(rng.integers(lo, hi + 1))) for _ in range(n)]
    if feats_kind == "ideal":
        return scs, torch.stack([ideal_features(s) for s in scs]).to(torch.bfloat16)
    feats = []
    for i in range(0, n, 256):
        px = pixel_values([scenes.render(s) for s in scs[i:i + 256]])
        h = tower(px).last_hidden_state[:, 1:]
        if feats_kind == "tower_ln":  # through the tower's own final LayerNorm (trained on CLS only)
            h = getattr(tower, "vision_model", tower).post_layernorm(h)
        feats.append(h.to(torch.bfloat16))
    out = torch.cat(feats)
    if feats_kind == "tower_std":  # standardised per dimension (statistics of this pool)
        f = out.float()
        out = ((f - f.mean((0, 1))) / f.std((0, 1)).clamp_min(1e-4)).to(torch.bfloat16)
    return scs, out


t0 = time.time()
train_scs, train_f = make_pool(pool, 1000)
test_scs, test_f = make_pool(400, 3)
print(json.dumps({"pool_s": round(time.time() - t0), "args": args}), flush=True)


def ask(s, f, rng):
    """tasks.ask, plus probe-only one-word variants (added for family-phases-scene-pool): `position1` = "where is the <shape>"
    (shape unique in the scene: one question word names the object, no colour+shape conjunction)."""
    if f == "position1":
        c = tasks._unique(s.objects, lambda o: o.shape)
        if not c:
            return None
        o = c[int(rng.integers(len(c)))]
        return tasks.Question(f, f"where is the {o.shape}", o.quadrant)
    return tasks.ask(s, f, rng)


def questions(scs, rng, families=None):
    out = []
    for i, s in enumerate(scs):
        order = list(families or fams)
        rng.shuffle(order)
        for f in order:
            q = ask(s, f, rng)
            if q is not None:
                out.append((i, q))
                break
    return out


def pad_batch(contexts, qs):
    """Right-padded ids and mask of `<bos> context question [? trigger]` per question (last = answer slot)."""
    seqs = []
    for ctx, (_, q) in zip(contexts, qs):
        s = [tok.bos_id] + ctx + tok.encode(q.text)
        if fmt == "trigger":
            s += tok.encode("?") + [tok.trigger_id]
        seqs.append(s)
    ids = torch.full((len(seqs), max(map(len, seqs))), tok.pad_id)
    mask = torch.zeros_like(ids)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    return ids, mask


def forward(feats, qs):
    ids, mask = pad_batch([[tok.image_id] * 144] * len(qs), qs)
    x = emb(ids)
    x = torch.cat([x[:, :1], proj(feats.float()), x[:, 145:]], 1)  # image tokens sit at 1..144
    h = lm(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
    return head(h[torch.arange(len(qs)), mask.sum(1) - 1])


def describe(scene, rng):
    """Added for family-phases-scene-pool: the scene as words, `a <colour> <shape> <quadrant>` per object (random order) and
    `written <word>`, for the text-only `lang` phase (stands in for an LLM's language pretraining)."""
    objs = list(scene.objects)
    rng.shuffle(objs)
    parts = [f"a {o.colour} {o.shape} {o.quadrant}" for o in objs]
    parts.insert(int(rng.integers(len(parts) + 1)), f"written {scene.word}")
    return " ".join(parts)


def forward_text(scs, qs, rng):
    """Like `forward`, with the scene's description in place of the image tokens."""
    ids, mask = pad_batch([tok.encode(describe(scs[i], rng)) for i, _ in qs], qs)
    h = lm(inputs_embeds=emb(ids), attention_mask=mask, use_cache=False).last_hidden_state
    return head(h[torch.arange(len(qs)), mask.sum(1) - 1])


def caption_loss(feats, scs):
    """Teacher-forced captioning loss (vtr's `caption_batch`: loss on every caption word and <eos>).
    Q1 of caption-opening300 ran with this probe at commit 669b989, whose own
    copy of the caption had no trigger after `what is there ?`."""
    from vtr.testbed.train import caption_batch

    ids, mask, targets, start = caption_batch(scs, tok)
    x = emb(ids)
    x = torch.cat([x[:, :1], proj(feats.float()), x[:, 145:]], 1)
    h = lm(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
    return F.cross_entropy(head(h[:, start:-1]).flatten(0, 1), targets.flatten(), ignore_index=-100)


trainable = list(proj.parameters()) + list(lm.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
rng = np.random.default_rng(7)
erng = np.random.default_rng(11)
test_q = questions(test_scs, erng)
plan = []  # (families, steps) per phase
for ph in args.get("phases", f"all:{steps}").split(","):
    name, n = ph.split(":")
    plan.append((fams if name == "all" else name.split("+"), int(n)))
schedule = [f for f, n in plan for _ in range(n)]
steps = len(schedule)
for step in range(steps):
    lm.train()
    idx = rng.choice(pool, size=batch, replace=False)
    if schedule[step] == ["caption"]:
        loss = caption_loss(train_f[idx], [train_scs[i] for i in idx])
        qs = None
    elif schedule[step] == ["lang"]:  # text-only: all fams about a described scene
        scs = [train_scs[i] for i in idx]
        qs = questions(scs, rng, fams)
        logits = forward_text(scs, qs, rng)
    else:
        qs = questions([train_scs[i] for i in idx], rng, schedule[step])
        logits = forward(train_f[idx][[i for i, _ in qs]], qs)
    if qs is not None:
        y = torch.tensor([tok.index[q.answer] for _, q in qs])
        loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    sched.step()
    if (step + 1) % every == 0 or step == 0:
        lm.eval()
        hits = {}
        with torch.no_grad():
            for i in range(0, len(test_q), 100):
                ch = test_q[i:i + 100]
                pred = forward(test_f[[j for j, _ in ch]], ch).argmax(-1)
                for (_, q), p in zip(ch, pred.tolist()):
                    hits.setdefault(q.family, []).append(tok.vocab[p] == q.answer)
            if ["lang"] in schedule:  # also the text-only accuracy (scene described in words)
                trng, thits = np.random.default_rng(13), []
                for i in range(0, len(test_q), 100):
                    ch = test_q[i:i + 100]
                    pred = forward_text(test_scs, ch, trng).argmax(-1)
                    thits += [tok.vocab[p] == q.answer for (_, q), p in zip(ch, pred.tolist())]
                hits_lang = round(float(np.mean(thits)), 3)
        acc = {f: round(float(np.mean(v)), 3) for f, v in sorted(hits.items())}
        if ["lang"] in schedule:
            acc["lang(text-only)"] = hits_lang
        allh = [x for v in hits.values() for x in v]
        print(json.dumps({"step": step + 1, "phase": "+".join(schedule[step]), "loss": round(loss.item(), 3), "overall": round(float(np.mean(allh)), 3),
                          "fam": acc, "s": round(time.time() - t0)}), flush=True)
