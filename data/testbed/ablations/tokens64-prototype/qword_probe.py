"""Probe: the first prototype stage 1, as literally as it is described, on our generator.

Single-turn `<bos> <image>*N question` with the loss ONLY at the last question word (no trigger, no
multi-turn), 8 scenes x 4 questions = 32 sequences per step, lr 2e-3 warm-up/hold/cosine, objects
per image 1 -> 6 over the first 40%. Held-out (300 questions, 2-6 objects) is scored at the
question word. If this learns retrieval, our multi-turn/trigger recipe is the culprit; if not, the
generator or vision tower differs from the prototype's.

usage: python qword_probe.py PATCH VISION_STEPS STEPS [LAYERS] [VISION_CACHE]
Exploratory; not part of vtr.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vtr.testbed import scenes

patch, vis_steps, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
layers = int(sys.argv[4]) if len(sys.argv) > 4 else 8
cache = Path(sys.argv[5]) if len(sys.argv) > 5 else Path(f"/tmp/s3/vision-p{patch}-{vis_steps}.safetensors")
scenes.PATCH_SIZE = patch
scenes.GRID = scenes.IMAGE_SIZE // patch
scenes.LABEL_SPACES["row"] = scenes.LABEL_SPACES["col"] = scenes.GRID

from vtr.testbed import tasks  # noqa: E402
from vtr.testbed.model import TestbedSpec, WordTokenizer, build_model, pixel_values  # noqa: E402
from vtr.testbed.train import Recipe, _schedule, heldout_split, load_vision, save_vision, train_vision  # noqa: E402

torch.set_num_threads(2)
tok = WordTokenizer()
N = scenes.GRID ** 2
model = build_model(TestbedSpec(patch_size=patch, text_layers=layers), seed=0)
log = lambda r: print(json.dumps(r), flush=True)  # noqa: E731
if cache.exists():
    load_vision(model, cache)
else:
    train_vision(model, Recipe(vision_steps=vis_steps), lambda r: log(r) if r["step"] % 100 == 0 else None)
    save_vision(model, cache)

held = heldout_split(300)


@torch.inference_mode()
def heldout_at_qword():
    model.eval()
    hits = {}
    for i in range(0, len(held), 50):
        chunk = held.samples[i:i + 50]
        seqs = [[tok.bos_id] + [tok.image_id] * N + tok.encode(s.question) for s in chunk]
        W = max(map(len, seqs))
        ids = torch.full((len(seqs), W), tok.pad_id)
        mask = torch.zeros_like(ids)
        for b, s in enumerate(seqs):
            ids[b, W - len(s):] = torch.tensor(s)
            mask[b, W - len(s):] = 1
        pos = (mask.cumsum(1) - 1).clamp_min(0)
        lg = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                   pixel_values=pixel_values([held.image(s) for s in chunk]), use_cache=False).logits[:, -1]
        for s, p in zip(chunk, lg.argmax(-1).tolist()):
            hits.setdefault(s.family, []).append(tok.vocab[p] == s.answer)
    fam = {f: round(float(np.mean(v)), 2) for f, v in sorted(hits.items())}
    return round(float(np.mean([x for v in hits.values() for x in v])), 3), fam


trainable = list(model.model.multi_modal_projector.parameters()) + \
    list(model.model.language_model.parameters()) + list(model.lm_head.parameters())
opt = torch.optim.AdamW(trainable, lr=2e-3, weight_decay=0.01, betas=(0.9, 0.98))
sched = _schedule(opt, steps, warmup=100, hold=0.3)
rng = np.random.default_rng(1000)
torch.manual_seed(1000)
t0 = time.time()
for step in range(steps):
    model.model.language_model.train()
    frac = step / steps
    max_obj = 6 if frac >= 0.4 else 1 + int(5 * frac / 0.4)
    seqs, imgs, ys = [], [], []
    for _ in range(8):
        sc = scenes.sample_scene(rng, int(rng.integers(1, max_obj + 1)))
        im = scenes.render(sc)
        for _ in range(4):
            q = tasks.ask_any(sc, rng)
            seqs.append([tok.bos_id] + [tok.image_id] * N + tok.encode(q.text))
            imgs.append(im)
            ys.append(tok.index[q.answer])
    W = max(map(len, seqs))
    ids = torch.full((len(seqs), W), tok.pad_id)
    mask = torch.zeros_like(ids)
    for b, s in enumerate(seqs):
        ids[b, W - len(s):] = torch.tensor(s)
        mask[b, W - len(s):] = 1
    pos = (mask.cumsum(1) - 1).clamp_min(0)
    h = model.model(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixel_values(imgs),
                    use_cache=False).last_hidden_state[:, -1]
    loss = F.cross_entropy(model.lm_head(h), torch.tensor(ys))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    sched.step()
    if step % 50 == 0:
        log({"step": step, "loss": round(loss.item(), 3), "max_obj": max_obj, "s": round(time.time() - t0)})
    if (step + 1) % 250 == 0 or step == steps - 1:
        overall, fam = heldout_at_qword()
        log({"step": step, "heldout_qword": overall, "families": fam, "s": round(time.time() - t0)})
