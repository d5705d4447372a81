"""Per-sample run files: where an evaluation's rows live, their header, and reading them back.

A run file is JSONL: a header line `{"type": "header", "fingerprint": ...}` (what made the run:
`vtr.fingerprint`), then one row per sample (`id`, `pred`, per-layer token counts). Its name
(`run_tag`) says which model, split and size it holds and ends in a digest of what decides the
answers (`vtr.experiments.evaluations.answer_key`); the summary record of an evaluation carries
that path (`run_file`), so nothing has to rebuild the name to find the per-sample answers again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import fingerprint as fp
from .. import journal
from ..paths import TESTBEDS, results_dir


def run_dir() -> Path:
    d = results_dir() / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_tag(model: str, benchmark: str | None, label: str, split_name: str, n: int, key: dict) -> str:
    """File name (without .jsonl) of an evaluation's per-sample run file: `label` (a word for the
    reader: the selection rule or the method), the split and its size, and a digest of `key`, the
    data that decides the answers, so equal keys share one file whoever asks. Real models and
    benchmarks also carry the model and benchmark names, the other testbeds their own name."""
    prefix = () if model == "testbed" else (model,) if model in TESTBEDS else (model, benchmark)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return "_".join(str(x) for x in (*prefix, label.replace(" ", "-"), split_name, n, digest))


def run_path(tag: str) -> Path:
    return run_dir() / f"{tag}.jsonl"


def read_run(out: Path | None, fingerprint: dict | None = None) -> dict[str, dict]:
    """Finished per-sample rows of a run file by sample id; with `fingerprint`, the file's header
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


