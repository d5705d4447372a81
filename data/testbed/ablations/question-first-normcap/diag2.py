import json, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from safetensors.torch import load_file
from vtr.testbed import scenes, tasks, evaluate, model as tbm
from vtr.testbed.model import build_model, TestbedSpec, WordTokenizer, pixel_values
from vtr.testbed.train import Recipe, heldout_split, _schedule, freeze_vision

args = dict(a.split("=") for a in sys.argv[1:])
steps = int(args.get("steps", 1500)); lr = float(args.get("lr", 2e-3)); B = int(args.get("batch", 32))
every = int(args.get("every", 250)); ramp = float(args.get("ramp", 0.3)); repeat = int(args.get("repeat", 1))
torch.set_num_threads(2); torch.manual_seed(0)
tok = WordTokenizer()

def prompt_ids(tok, question, n):
    q = tok.encode(question + " ?")
    return [tok.bos_id] + q + [tok.image_id] * n + (q if repeat else []) + [tok.trigger_id]
tbm.prompt_ids = prompt_ids

m = build_model(TestbedSpec(), seed=0)
sd = load_file("/work/main/data/testbed/model/model.safetensors")
vt = {k[len("vision_tower."):]: v for k, v in sd.items() if k.startswith("vision_tower.")}
m.model.vision_tower.load_state_dict(vt); freeze_vision(m)
trainable = list(m.model.multi_modal_projector.parameters()) + list(m.model.language_model.parameters()) + list(m.lm_head.parameters())
opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
sched = _schedule(opt, steps, 50, hold=0.5)
rng = np.random.default_rng(1000)
held = heldout_split(300)
t0 = time.time()
for step in range(steps):
    m.model.language_model.train()
    frac = step / steps
    max_obj = 6 if frac >= ramp else 1 + int(5 * frac / ramp)
    scs = [scenes.sample_scene(rng, int(rng.integers(1, max_obj + 1))) for _ in range(B)]
    qs = [tasks.ask_any(s, rng) for s in scs]
    seqs = [prompt_ids(tok, q.text, 144) for q in qs]
    W = max(map(len, seqs))
    ids = torch.full((B, W), tok.pad_id); mask = torch.zeros_like(ids)
    for b, s in enumerate(seqs):
        ids[b, W - len(s):] = torch.tensor(s); mask[b, W - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    h = m.model(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixel_values([scenes.render(s) for s in scs]), use_cache=False).last_hidden_state
    lg = m.lm_head(h[:, -1])
    loss = F.cross_entropy(lg, torch.tensor([tok.index[q.answer] for q in qs]))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(trainable, 1.0); opt.step(); sched.step()
    if step % 50 == 0:
        print(json.dumps({"step": step, "loss": round(loss.item(), 3), "s": round(time.time() - t0)}), flush=True)
    if (step + 1) % every == 0:
        m.eval()
        r = evaluate.summarise(held.samples, evaluate.predict(m, held))
        print(json.dumps({"step": step, "overall": round(r["overall"], 3), "fam": {k: round(v, 2) for k, v in r["families"].items()}, "s": round(time.time() - t0)}), flush=True)
torch.save(m.state_dict(), "/tmp/d2/model.pt")
