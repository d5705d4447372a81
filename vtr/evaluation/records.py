"""Per-sample run files: where an evaluation's records live, their header, and reading them back.

A run file is JSONL: a header line `{"type": "header", "fingerprint": ...}` (what made the run:
`vtr.fingerprint`), then one record per sample (`id`, `pred`, per-layer token counts). Its name
(`run_tag`) says which model, experiment, method, budget, split, size, seed and hyper-parameters
it holds; the summary record of an evaluation carries that path (`run_file`), so nothing has to
rebuild the name to find the per-sample answers again.
"""
from __future__ import annotations

from pathlib import Path

from .. import fingerprint as fp
from .. import journal
from ..paths import TESTBEDS, results_dir


def run_dir() -> Path:
    d = results_dir() / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_tag(model: str, benchmark: str | None, experiment: str, name: str, budget, kind: str, split_name: str,
            n: int, seed: int, hp: dict) -> str:
    """File name (without .jsonl) of an evaluation's per-sample run file. The unpruned model's run is
    shared by all experiments (it is the same computation); real models/benchmarks also carry the
    model and benchmark names, the other testbeds their own name."""
    prefix = () if model == "testbed" else (model,) if model in TESTBEDS else (model, benchmark)
    experiment = "shared" if name == "full" and not hp else experiment
    return "_".join(str(x) for x in (*prefix, experiment, name, budget, kind, split_name, n, seed,
                                     *sorted(f"{k}={v}" for k, v in hp.items())))


def run_path(tag: str) -> Path:
    return run_dir() / f"{tag}.jsonl"


def read_run(out: Path | None, fingerprint: dict | None = None) -> dict[str, dict]:
    """Finished per-sample records of a run file by sample id; with `fingerprint`, the file's header
    must carry the same one (`vtr.fingerprint.check`)."""
    recs = journal.read(out) if out is not None else []
    if not recs:
        return {}
    head = recs[0] if recs[0].get("type") == "header" else {}
    if fingerprint is not None:
        fp.check(head.get("fingerprint", {}), fingerprint, str(out), fresh=f"delete {out}")
    return {r["id"]: r for r in recs if r.get("type") != "header"}


def start_run(out: Path, fingerprint: dict | None) -> None:
    """Write the header of a new (or empty) run file."""
    if fingerprint is not None and (not out.exists() or out.stat().st_size == 0):
        journal.append(out, [{"type": "header", "fingerprint": fp.canonical(fingerprint)}])


