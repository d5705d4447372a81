"""Run from the repository root: python data/testbed/ablations/stage0-reuse/stage1_equiv.py 50. The refactored train_language (caption_steps=0) logs the same losses as the shipped run's
first stage-1 steps, starting from the shipped (frozen) vision tower."""
import json, sys
import torch
from safetensors.torch import load_file
from vtr.testbed import train as T
from vtr.testbed.model import build_model, TestbedSpec

recipe, spec = T.Recipe(), TestbedSpec()
torch.set_num_threads(recipe.threads)
torch.manual_seed(recipe.seed)
model = build_model(spec, seed=recipe.seed)
sd = load_file("data/testbed/model/model.safetensors")
pre = "model.vision_tower." if any(k.startswith("model.vision_tower.") for k in sd) else "vision_tower."
model.model.vision_tower.load_state_dict({k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)})
T.freeze_vision(model)
shipped = [json.loads(l) for l in open("data/testbed/model/training_log.jsonl")]
shipped = {r["step"]: r for r in shipped if r.get("stage") == 1 and "loss" in r}

class Done(Exception): pass

def log(rec):
    ref = shipped[rec["step"]]
    print(rec["step"], rec["loss"], ref["loss"], rec["loss"] == ref["loss"], flush=True)
    if rec["step"] >= int(sys.argv[1]):
        raise Done

try:
    T.train_language(model, recipe, log, heldout=None)
except Done:
    pass
