import json, sys, time
import numpy as np, torch, torch.nn.functional as F
from safetensors.torch import load_file
from vtr.testbed import scenes, tasks
from vtr.testbed.model import build_model, TestbedSpec, WordTokenizer, pixel_values
from vtr.testbed.train import _schedule, freeze_vision
args = dict(a.split("=") for a in sys.argv[1:])
fam = args.get("fam", "attribute"); nobj = int(args.get("objs", 1)); steps = int(args.get("steps", 150))
torch.set_num_threads(2); torch.manual_seed(0)
tok = WordTokenizer()
m = build_model(TestbedSpec(), seed=0)
if args.get("vis", "ship") == "ship":
    sd = load_file("/work/main/data/testbed/model/model.safetensors")
    m.model.vision_tower.load_state_dict({k[len("vision_tower."):]: v for k, v in sd.items() if k.startswith("vision_tower.")})
freeze_vision(m)
trainable = list(m.model.multi_modal_projector.parameters()) + list(m.model.language_model.parameters()) + list(m.lm_head.parameters())
opt = torch.optim.AdamW(trainable, lr=float(args.get("lr", 2e-3)), weight_decay=0.01, betas=(0.9, 0.98))
rng = np.random.default_rng(1000); t0 = time.time()
for step in range(steps):
    scs = [scenes.sample_scene(rng, nobj) for _ in range(32)]
    qs = [tasks.ask(s, fam, rng) for s in scs]
    keep = [i for i, q in enumerate(qs) if q is not None]
    scs = [scs[i] for i in keep]; qs = [qs[i] for i in keep]
    seqs = [[tok.bos_id] + [tok.image_id]*144 + tok.encode(q.text + " ?") + [tok.trigger_id] for q in qs]
    W = max(map(len, seqs)); ids = torch.full((len(qs), W), tok.pad_id); mask = torch.zeros_like(ids)
    for b, s in enumerate(seqs): ids[b, W-len(s):] = torch.tensor(s); mask[b, W-len(s):] = 1
    h = m.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values([scenes.render(s) for s in scs]), use_cache=False).last_hidden_state
    lg = m.lm_head(h[:, -1]); y = torch.tensor([tok.index[q.answer] for q in qs])
    loss = F.cross_entropy(lg, y)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(trainable, 1.0); opt.step()
    if step % 10 == 0:
        print(json.dumps({"step": step, "loss": round(loss.item(), 3), "acc": round((lg.argmax(-1) == y).float().mean().item(), 2), "s": round(time.time() - t0)}), flush=True)
