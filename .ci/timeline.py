"""Sum a $VTR_TIMELINE file (`vtr.timeline`): per process (one notebook kernel each, in the order
they started), model loads, evaluations run and reused, samples evaluated, seconds in the model, in
input preparation and elsewhere in the loop, batch sizes, the feature memos' hit rates and timings.

    python .ci/timeline.py FILE [--json]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict


def summarise(lines: list[dict]) -> list[dict]:
    procs: dict[int, dict] = {}
    for e in sorted(lines, key=lambda e: e["time"]):
        p = procs.setdefault(e["pid"], {"pid": e["pid"], "start": e["time"], "loads": 0, "load_s": 0.0,
                                        "evaluations": 0, "reused": 0, "samples": 0, "model_s": 0.0,
                                        "inputs_s": 0.0, "loop_s": 0.0, "batches": Counter(),
                                        "memo": Counter(), "timings": 0, "timings_reused": 0,
                                        "timing_s": 0.0})
        if e["event"] == "load":
            p["loads"] += 1
            p["load_s"] += e["seconds"]
        elif e["event"] == "evaluate":
            p["evaluations"] += 1
            p["reused"] += e["evaluated"] == 0
            p["samples"] += e["evaluated"]
            s = e["seconds"]
            p["model_s"] += s.get("model", 0.0)
            p["inputs_s"] += s.get("inputs", 0.0)
            p["loop_s"] += s["total"] - s.get("model", 0.0) - s.get("inputs", 0.0)
            if e["evaluated"]:
                p["batches"][min(e["batch_size"], e["evaluated"])] += e["batches"]
            p["memo"].update(e["memo"])
        elif e["event"] == "measure":
            p["timings"] += 1
            p["timings_reused"] += bool(e["reused"])
            p["timing_s"] += e.get("seconds", 0.0)
    return list(procs.values())


def rate(memo: Counter, kind: str) -> str:
    hits, misses = memo[f"{kind}hits"], memo[f"{kind}misses"]
    return f"{hits / (hits + misses):.2f} of {hits + misses}" if hits + misses else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with open(args.file, encoding="utf-8") as f:
        procs = summarise([json.loads(line) for line in f if line.strip()])
    if args.json:
        print(json.dumps(procs, default=dict, indent=1))
        return
    total = defaultdict(float)
    for i, p in enumerate(procs):
        print(f"process {i} (pid {p['pid']}): {p['loads']} loads ({p['load_s']:.0f} s); "
              f"{p['evaluations']} evaluations ({p['reused']} reused), {p['samples']} samples; "
              f"model {p['model_s']:.0f} s, inputs {p['inputs_s']:.0f} s, rest of loop {p['loop_s']:.0f} s; "
              f"timings {p['timings']} ({p['timings_reused']} reused, {p['timing_s']:.0f} s)")
        print(f"    batches {dict(sorted(p['batches'].items()))}; image memo {rate(p['memo'], '')}, "
              f"layer memo {rate(p['memo'], 'layer_')}, prefix memo {rate(p['memo'], 'prefix_')}")
        for k in ("loads", "load_s", "evaluations", "reused", "samples", "model_s", "inputs_s", "loop_s",
                  "timings", "timing_s"):
            total[k] += p[k]
    print("total: " + ", ".join(f"{k} {v:.0f}" for k, v in total.items()))


if __name__ == "__main__":
    main()
