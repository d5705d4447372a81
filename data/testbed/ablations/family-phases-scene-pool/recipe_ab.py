"""The recipe's own training step (`vtr.testbed.train._language_step`) in the probe's
setting, to find why the probe's attribute binding (~200 steps) does not appear in `vtr testbed train`.

    python recipe_ab.py tower=/work/retrain/s7/checkpoint/vision.safetensors batch=32 turns=1 main=0 eos=1 steps=300

Held-out: 200 attribute questions (fresh scenes, 1-6 objects), answered at the last question word.
Exploratory, not part of vtr.
"""
import json
import sys
import time

import numpy as np
import torch

from vtr.testbed import scenes, tasks
from vtr.testbed import train as T
from vtr.testbed.model import TestbedSpec, WordTokenizer, build_model, pixel_values

args = dict(a.split("=") for a in sys.argv[1:])
fresh_scene = scenes.sample_scene  # held-out scenes stay fresh when training draws from a pool
torch.set_num_threads(2)
recipe = T.Recipe(batch=int(args.get("batch", 16)), max_turns=int(args.get("turns", 4)))
model = build_model(TestbedSpec(), seed=0)
T.load_vision(model, args["tower"])
tok = WordTokenizer()
trainable = list(model.model.multi_modal_projector.parameters()) + \
    list(model.model.language_model.parameters()) + list(model.lm_head.parameters())
opt = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=0.01, betas=(0.9, 0.98))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
rng = np.random.default_rng(int(args.get("seed", 1000)))  # batch order
torch.manual_seed(1000)
if args.get("eos", "1") == "0":  # drop the eos targets
    conv = T.conversation
    T.conversation = lambda *a, **k: (lambda ids_t: (ids_t[0], [t for t in ids_t[1] if t[2] != "eos"]))(conv(*a, **k))

if args.get("textfallback", "1") == "0":  # no loss on the `text` question a conversation falls back to
    conv2 = T.conversation
    words = {tok.index[w] for w in scenes.WORDS}
    T.conversation = lambda *a, **k: (lambda it: (it[0], [t for t in it[1] if t[1] not in words]))(conv2(*a, **k))

if args.get("bf16", "0") == "1":  # round the projector's input to bfloat16, as the probe's cached features are
    model.model.multi_modal_projector.register_forward_pre_hook(lambda mod, a: (a[0].to(torch.bfloat16).float(),))

if "pool" in args:  # draw scenes from a fixed pool (seed 1000, 1-6 objects), as the probe does
    prng = np.random.default_rng(int(args.get("poolseed", 1000)))
    POOL = [scenes.sample_scene(prng, int(prng.integers(1, 7))) for _ in range(int(args["pool"]))]
    T.scenes.sample_scene = lambda rng, n: POOL[int(rng.integers(len(POOL)))]

erng = np.random.default_rng(3)
held = []
while len(held) < 200:
    s = fresh_scene(erng, int(erng.integers(1, 7)))
    q = tasks.ask(s, "attribute", erng)
    if q is not None:
        held.append((s, q))


@torch.no_grad()
def qword_accuracy():
    model.eval()
    hits = []
    for i in range(0, len(held), 50):
        ch = held[i:i + 50]
        seqs = [[tok.bos_id] + [tok.image_id] * 144 + tok.encode(q.text) for _, q in ch]
        W = max(map(len, seqs))
        ids = torch.full((len(seqs), W), tok.pad_id)
        mask = torch.zeros_like(ids)
        for b, s in enumerate(seqs):
            ids[b, :len(s)] = torch.tensor(s)
            mask[b, :len(s)] = 1
        h = model.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values([scenes.render(s) for s, _ in ch]),
                        use_cache=False).last_hidden_state
        pred = model.lm_head(h[torch.arange(len(seqs)), mask.sum(1) - 1]).argmax(-1)
        hits += [tok.vocab[p] == q.answer for (_, q), p in zip(ch, pred.tolist())]
    return float(np.mean(hits))


t0 = time.time()
main_w = float(args.get("main", 0))
for step in range(int(args.get("steps", 300))):
    model.model.language_model.train()
    loss = T._language_step(model, tok, rng, recipe, opt, sched, trainable, 1.0, main_w, 6, ("attribute",))
    if (step + 1) % 50 == 0:
        print(json.dumps({"step": step + 1, "loss": round(loss, 3), "attribute_qword": qword_accuracy(),
                          "s": round(time.time() - t0)}), flush=True)
