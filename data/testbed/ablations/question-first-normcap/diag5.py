import json, sys, time
import numpy as np, torch, torch.nn.functional as F
from safetensors.torch import load_file
from vtr.testbed import scenes, tasks, evaluate, model as tbm
from vtr.testbed.model import build_model, TestbedSpec, WordTokenizer, pixel_values
from vtr.testbed.train import heldout_split, _schedule, freeze_vision
args = dict(a.split("=") for a in sys.argv[1:])
steps = int(args.get("steps", 600)); lr = float(args.get("lr", 2e-3)); B = int(args.get("batch", 32))
every = int(args.get("every", 150)); ramp = float(args.get("ramp", 0.3)); norm_w = float(args.get("norm", 1.0))
aux_w = float(args.get("aux", 1.0)); main_w = float(args.get("main", 0.3))
torch.set_num_threads(2); torch.manual_seed(0)
tok = WordTokenizer()
tbm.prompt_ids = lambda tok, q, n: [tok.bos_id] + [tok.image_id] * n + tok.encode(q + " ?") + [tok.trigger_id]
m = build_model(TestbedSpec(), seed=0)
sd = load_file("/work/main/data/testbed/model/model.safetensors")
m.model.vision_tower.load_state_dict({k[len("vision_tower."):]: v for k, v in sd.items() if k.startswith("vision_tower.")}); freeze_vision(m)
cap = {}
m.model.multi_modal_projector.register_forward_hook(lambda mod, i, o: cap.__setitem__("p", o))
trainable = list(m.model.multi_modal_projector.parameters()) + list(m.model.language_model.parameters()) + list(m.lm_head.parameters())
opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
sched = _schedule(opt, steps, 50, hold=0.5)
rng = np.random.default_rng(1000)
held = heldout_split(300)
@torch.no_grad()
def eval_qword():
    hits = {}
    for i in range(0, len(held.samples), 50):
        ch = held.samples[i:i+50]
        seqs = [[tok.bos_id] + [tok.image_id]*144 + tok.encode(s.question) for s in ch]
        W = max(map(len, seqs)); ids = torch.full((len(ch), W), tok.pad_id); mask = torch.zeros_like(ids)
        for b, s in enumerate(seqs): ids[b, W-len(s):] = torch.tensor(s); mask[b, W-len(s):] = 1
        lg = m(input_ids=ids, attention_mask=mask, pixel_values=pixel_values([held.image(s) for s in ch]), use_cache=False, logits_to_keep=1).logits[:, -1]
        for s, p in zip(ch, lg.argmax(-1).tolist()): hits.setdefault(s.family, []).append(tok.vocab[p] == s.answer)
    return {f: round(float(np.mean(v)), 2) for f, v in sorted(hits.items())}
def conv(scene):
    ids = [tok.bos_id] + [tok.image_id] * 144; targets = []
    fl = list(tasks.FAMILIES); rng.shuffle(fl)
    for fam in fl[: int(rng.integers(1, 5))]:
        q = tasks.ask(scene, fam, rng)
        if q is None: continue
        a = tok.index[q.answer]; ids += tok.encode(q.text); targets.append((len(ids)-1, a, aux_w))
        ids += tok.encode("?") + [tok.trigger_id]; targets.append((len(ids)-1, a, main_w))
        ids.append(a); targets.append((len(ids)-1, tok.eos_id, 0.1)); ids.append(tok.eos_id)
    return (ids, targets) if targets else conv(scene)
t0 = time.time()
for step in range(steps):
    m.model.language_model.train()
    frac = step / steps
    max_obj = 6 if frac >= ramp else 1 + int(5 * frac / ramp)
    scs = [scenes.sample_scene(rng, int(rng.integers(1, max_obj + 1))) for _ in range(B)]
    convs = [conv(s) for s in scs]
    W = max(len(c[0]) for c in convs)
    ids = torch.full((B, W), tok.pad_id); mask = torch.zeros_like(ids)
    rows, cols, tg, ws = [], [], [], []
    for b, (seq, t) in enumerate(convs):
        ids[b, :len(seq)] = torch.tensor(seq); mask[b, :len(seq)] = 1
        for p, y, w in t:
            if w > 0: rows.append(b); cols.append(p); tg.append(y); ws.append(w)
    h = m.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values([scenes.render(s) for s in scs]), use_cache=False).last_hidden_state
    lg = m.lm_head(h[torch.tensor(rows), torch.tensor(cols)]); w = torch.tensor(ws)
    loss_a = (F.cross_entropy(lg, torch.tensor(tg), reduction="none") * w).sum() / w.sum()
    rms = cap["p"].pow(2).mean(-1).sqrt(); loss_n = (rms - 1).clamp(min=0).pow(2).mean()
    loss = loss_a + norm_w * loss_n
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(trainable, 1.0); opt.step(); sched.step()
    if step % 50 == 0:
        print(json.dumps({"step": step, "loss": round(loss_a.item(), 3), "rms": round(rms.mean().item(), 2), "s": round(time.time() - t0)}), flush=True)
    if (step + 1) % every == 0:
        m.eval()
        r = evaluate.summarise(held.samples, evaluate.predict(m, held))
        print(json.dumps({"step": step, "trig": {k: round(v, 2) for k, v in r["families"].items()}, "qword": eval_qword(), "s": round(time.time() - t0)}), flush=True)
