"""Stage 0 alone (the vision tower of `vtr testbed train`), saved for the binding probe.
Usage: python stage0_only.py <vision_norm weight> <out.safetensors>  (vision-norm runs: 1.0, ~22 min on 2 cores)"""
import sys, json, time, torch
from vtr.testbed.train import Recipe, train_vision, save_vision
from vtr.testbed.model import TestbedSpec, build_model
w = float(sys.argv[1]); out = sys.argv[2]
r = Recipe(vision_norm=w)
torch.set_num_threads(2); torch.manual_seed(r.seed)
m = build_model(TestbedSpec(), seed=r.seed)
t0 = time.time()
def log(rec):
    rec["seconds"] = round(time.time() - t0, 1); print(json.dumps(rec), flush=True)
train_vision(m, r, log)
save_vision(m, out)
