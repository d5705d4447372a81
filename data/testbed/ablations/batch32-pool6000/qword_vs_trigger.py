"""Held-out accuracy of a training checkpoint at the last question word (the auxiliary target) and at
the trigger (what `vtr testbed eval` scores), per family: does a run fail to retrieve, or to copy?

    python qword_vs_trigger.py /work/retrain/s8/checkpoint/language.pt [n=300]
    python qword_vs_trigger.py data/testbed/model [n=300]     # a saved testbed folder
"""
import sys
from collections import defaultdict

import torch

from vtr.testbed import scenes
from vtr.testbed import train as T
from vtr.testbed.model import WordTokenizer, build_model, load_testbed, pixel_values

torch.set_num_threads(1)
path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
if path.endswith(".pt"):
    model = build_model(seed=0)
    model.load_state_dict(torch.load(path, weights_only=False)["model"])
else:
    model = load_testbed(path)[0]
model.eval()
tok = WordTokenizer()
held = T.heldout_split(n)
hits = {"qword": defaultdict(list), "trigger": defaultdict(list)}
with torch.no_grad():
    for s in held.samples:
        ids = [tok.bos_id] + [tok.image_id] * (scenes.GRID * scenes.GRID) + tok.encode(s.question)
        q_pos = len(ids) - 1
        ids += tok.encode("?") + [tok.trigger_id]
        out = model(input_ids=torch.tensor([ids]), pixel_values=pixel_values([held.image(s)])).logits[0]
        for name, pos in (("qword", q_pos), ("trigger", len(ids) - 1)):
            hits[name][s.family].append(tok.vocab[int(out[pos].argmax())] == s.answer)
for name, fam in hits.items():
    allh = [h for v in fam.values() for h in v]
    print(name, f"overall {sum(allh) / len(allh):.3f}",
          " ".join(f"{f} {sum(v) / len(v):.2f}" for f, v in sorted(fam.items())))
