#!/usr/bin/env python3
"""Compare two results folders of the book (before and after a change that must not change results).

    python .ci/compare_results.py OLD_RESULTS NEW_RESULTS

Compares the summary records (records.jsonl, keyed by experiment, method, budget, kind, model, split,
seed and hyper-parameters), every saved JSON result of both (searched plans included) and the DyVTE
routers' tensors, leaving out what a rerun changes by itself: timings, wall-clock times, versions, the
code fingerprint, run file names. Prints each folder's number of run files (evaluations made).
Exits 1 when something differs. Standard library plus safetensors (for the routers).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# what differs between two runs of the same code and data; run files are named by a digest of what
# decides their answers, so their names change with the code while the answers must not
VOLATILE = {"time", "versions", "speedup", "_seconds", "seconds", "new_evaluations", "code", "saved",
            "run_file"}


def clean(x, root: str = ""):
    if isinstance(x, dict):
        return {k: clean(v, root) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [clean(v, root) for v in x]
    return x.replace(root, "<results>") if isinstance(x, str) and root else x


def records(folder: Path) -> dict:
    out = {}
    for line in (folder / "records.jsonl").read_text().splitlines():
        if line.strip():
            r = clean(json.loads(line), str(folder))
            key = json.dumps([r.get(k) for k in ("experiment", "method", "budget", "kind", "model", "split",
                                                 "seed", "hyperparameters")])
            out[key] = r
    return out


def main(old: Path, new: Path) -> int:
    problems = []
    a, b = records(old), records(new)
    problems += [f"record only in {old if k in a else new}: {k}" for k in sorted(set(a) ^ set(b))]
    problems += [f"record differs: {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    names = sorted({p.name for p in old.glob("*.json")} & {p.name for p in new.glob("*.json")})
    for name in names:
        before = clean(json.loads((old / name).read_text()), str(old))
        if before != clean(json.loads((new / name).read_text()), str(new)):
            problems.append(f"saved result differs: {name}")
    routers = sorted({p.name for p in old.glob("*.safetensors")}
                     & {p.name for p in new.glob("*.safetensors")})
    if routers:
        import torch
        from safetensors.torch import load_file

        for name in routers:
            x, y = load_file(old / name), load_file(new / name)
            if x.keys() != y.keys() or not all(torch.equal(x[k], y[k]) for k in x):
                problems.append(f"routers differ: {name}")
    for folder in (old, new):
        print(f"{folder}: {len(list((folder / 'runs').glob('*.jsonl')))} run files (evaluations), "
              f"{len(records(folder))} summary records")
    print(f"{len(set(a) & set(b))} records in both, {len(names)} saved results in both, "
          f"{len(routers)} routers files: {len(problems)} differences")
    for p in problems:
        print(" ", p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
