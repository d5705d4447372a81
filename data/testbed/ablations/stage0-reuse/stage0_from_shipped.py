"""Prepare an output folder whose stage 0 is the shipped checkpoint's vision tower, so that
`vtr testbed train --out OUT ...` (same stage-0 settings) resumes at stage 1 and saves ~10 minutes.

Equivalent to running stage 0: the caption-opening300 run showed that stage 0 from scratch reproduces the shipped
tower bit for bit (71/71 tensors, `cmp_stage0.py` beside this file). Writes OUT/training_log.jsonl (the
shipped log's stage-0 records) and OUT/checkpoint/vision.safetensors + vision.json, exactly what
`Checkpoints.save_vision` writes after stage 0.

    python data/testbed/ablations/stage0-reuse/stage0_from_shipped.py /work/retrain/s11
"""
import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

model_dir = Path(__file__).resolve().parents[2] / "model"
out = Path(sys.argv[1])
(out / "checkpoint").mkdir(parents=True, exist_ok=True)
recs = [line for line in (model_dir / "training_log.jsonl").read_text().splitlines()
        if json.loads(line)["stage"] == 0]
(out / "training_log.jsonl").write_text("".join(r + "\n" for r in recs))
prefix = "vision_tower."
weights = load_file(str(model_dir / "model.safetensors"))
tower = {k[len(prefix):]: v.contiguous() for k, v in weights.items() if k.startswith(prefix)}
save_file(tower, str(out / "checkpoint" / "vision.safetensors"))
elapsed = json.loads(recs[-1])["seconds"]
(out / "checkpoint" / "vision.json").write_text(json.dumps(
    {"log_bytes": (out / "training_log.jsonl").stat().st_size, "elapsed": elapsed}))
print(f"{out}: {len(recs)} stage-0 records, {len(tower)} tower tensors, elapsed {elapsed} s")
