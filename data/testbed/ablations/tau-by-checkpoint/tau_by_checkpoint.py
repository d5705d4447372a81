"""Does training change how consistently the decoder's layers rank vision tokens? Kendall tau
(mean over pairs of layers >= 1, as the rank-consistency chapter computes it) for every testbed
checkpoint shipped so far, read from git history (all: same architecture, 8 decoder layers,
different recipes and training lengths), on the first N val questions.

    python data/testbed/ablations/tau-by-checkpoint/tau_by_checkpoint.py 300   # from the repo root

Writes tau_by_checkpoint.json beside this file (read by the rank-consistency chapter).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHIPPED = {  # commit that shipped the checkpoint -> what it is
    "5a95b1a": "batch16-fresh-scenes (16 conv/step, 5000 q-steps)",
    "39f6d89": "batch32-pool6000 (32 conv/step, scene pool, 3700 q-steps)",
    "8fe3e50": "caption-opening300 (300 captions + 3400 q-steps)",
    "cc9d134": "captions-every4 (captions throughout, 4000 steps)",
}
FILES = ("config.json", "generation_config.json", "model.safetensors", "testbed_spec.json", "tokenizer.json",
         "tokenizer_config.json", "training.json")
CHILD = """
import json, sys
import numpy as np
from vtr import analysis, experiments, book_runs
runner, split = experiments.testbed("val")
split = split.subset(int(sys.argv[1]))
out = {}
for q in ("last", "text_mean"):
    taus = analysis.kendall_per_sample(analysis.layer_scores(runner, split, q, progress=False))
    out[q] = book_runs.tau_excluding_first({q: {"tau_mean": taus.mean(0).tolist()}}, q)
    out[q + "_layer0"] = float(np.mean(taus.mean(0)[0, 1:]))
print(json.dumps(out))
"""

n = sys.argv[1] if len(sys.argv) > 1 else "100"
repo = Path.cwd()
rows = {}
for commit, what in SHIPPED.items():
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "testbed" / "model").mkdir(parents=True)
        os.symlink(repo / "data" / "benchmarks", data / "benchmarks")
        for f in FILES:
            blob = subprocess.run(["git", "show", f"{commit}:data/testbed/model/{f}"], capture_output=True, check=True).stdout
            (data / "testbed" / "model" / f).write_bytes(blob)
        res = subprocess.run([sys.executable, "-c", CHILD, n], capture_output=True, text=True,
                             env={**os.environ, "VTR_DATA": tmp}, check=True)
        rows[what] = json.loads(res.stdout.strip().splitlines()[-1])
        log = subprocess.run(["git", "show", f"{commit}:data/testbed/model/training_log.jsonl"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        held = [json.loads(line) for line in log if '"heldout"' in line]
        rows[what].update(commit=commit, steps=held[-1]["step"] + 1, heldout=held[-1]["heldout"]["overall"])
        print(commit, what, rows[what], flush=True)
result = {"n": int(n), "split": "val", "checkpoints": rows}
Path(__file__).with_name("tau_by_checkpoint.json").write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
