"""The 8-layer testbed checkpoints shipped so far, read back from the repository's history, and how
consistently each one's decoder layers rank vision tokens.

Does training change that consistency? Every checkpoint in `SHIPPED` has the same architecture
(8 decoder layers, hidden 128) and another recipe or training length; `tau_by_checkpoint` loads
each from the commit that shipped it and computes the rank-consistency chapter's mean Kendall tau
on the same val questions. `save` writes the result where that chapter reads it
(data/testbed/ablations/tau-by-checkpoint/, whose NOTES.md reads the numbers).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import analysis
from ..paths import REPO, data_dir
from .data import load
from .model import load_testbed
from .runner import TestbedRunner

# The commit that shipped each 8-layer checkpoint -> its variant (data/testbed/ablations/<variant>/).
SHIPPED = {
    "5a95b1a": "batch16-fresh-scenes (16 conv/step, 5000 q-steps)",
    "39f6d89": "batch32-pool6000 (32 conv/step, scene pool, 3700 q-steps)",
    "8fe3e50": "caption-opening300 (300 captions + 3400 q-steps)",
    "cc9d134": "captions-every4 (captions throughout, 4000 steps)",
}
CHECKPOINT = "data/testbed/model"  # where every one of them was committed
FILES = ("config.json", "generation_config.json", "model.safetensors", "testbed_spec.json", "tokenizer.json",
         "tokenizer_config.json", "training.json")
QUERIES = ("last", "text_mean")


def _show(repo: Path, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True,
                          check=True).stdout


def checkpoint_at(commit: str, dest: Path, repo: Path = REPO) -> Path:
    """Write the testbed checkpoint committed at `commit` (its `FILES` under `CHECKPOINT`) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (dest / name).write_bytes(_show(repo, commit, f"{CHECKPOINT}/{name}"))
    return dest


def training_outcome(log: str) -> dict:
    """The stage 1-2 steps and the held-out accuracy of a training log's last held-out evaluation."""
    held = [json.loads(line) for line in log.splitlines() if '"heldout"' in line]
    return {"steps": held[-1]["step"] + 1, "heldout": held[-1]["heldout"]["overall"]}


def mean_tau_without_first(tau: np.ndarray) -> float:
    """Mean of an (L, L) Kendall tau matrix over pairs of distinct layers, both >= 1 (as the paper,
    which leaves out the first layer)."""
    L = len(tau)
    return float(np.mean([tau[i, j] for i in range(1, L) for j in range(i + 1, L)]))


def layer_tau(runner, split) -> dict:
    """For each query (`QUERIES`): the mean tau over layer pairs >= 1 (`<query>`) and layer 0's mean
    tau with every later layer (`<query>_layer0`), each pair's tau averaged over the questions."""
    out = {}
    for q in QUERIES:
        tau = analysis.kendall_per_sample(analysis.layer_scores(runner, split, q, progress=False)).mean(0)
        out[q] = mean_tau_without_first(tau)
        out[q + "_layer0"] = float(np.mean(tau[0, 1:]))
    return out


def tau_by_checkpoint(n: int, shipped: dict[str, str] = SHIPPED, repo: Path = REPO) -> dict:
    """`layer_tau` of every checkpoint in `shipped` on the first n val questions, with the commit,
    training steps and last held-out accuracy of each."""
    split = load("val").subset(n)
    rows = {}
    for commit, what in shipped.items():
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = load_testbed(checkpoint_at(commit, Path(tmp), repo))
            rows[what] = layer_tau(TestbedRunner(model), split)
        log = _show(repo, commit, f"{CHECKPOINT}/training_log.jsonl").decode()
        rows[what].update(commit=commit, **training_outcome(log))
    return {"n": n, "split": "val", "checkpoints": rows}


def saved_path() -> Path:
    """The saved result the rank-consistency chapter reads."""
    return data_dir() / "testbed" / "ablations" / "tau-by-checkpoint" / "tau_by_checkpoint.json"


def save(n: int = 300) -> dict:
    """Compute `tau_by_checkpoint(n)` and write it to `saved_path()`."""
    result = tau_by_checkpoint(n)
    saved_path().write_text(json.dumps(result, indent=1) + "\n")
    return result
