"""The results store: one JSONL file of summary records that the book's tables and figures read.

A record: {"experiment", "method", "budget", "kind", "model", "split", "seed", "metrics": {...},
"flops_ratio", "keep_rate", "mean_tokens", "speedup", ..., "versions": {...}, "time"}.
Records are appended (never rewritten); `load` returns the latest record per key.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import journal, timeline
from ..paths import results_dir


def versions() -> dict:
    import torch
    import transformers

    import vtr

    return {"vtr": vtr.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads()}


def store_path(name: str = "records") -> Path:
    return results_dir() / f"{name}.jsonl"


def append(record: dict, path: Path | None = None) -> dict:
    path = path or store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**record, "versions": versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    journal.append(path, [record])
    return record


KEY = ("experiment", "method", "budget", "kind", "model", "split", "seed")


def load(path: Path | None = None, experiment: str | None = None) -> list[dict]:
    """Latest record per key (experiment, method, budget, kind, model, split, seed)."""
    path = path or store_path()
    if not path.exists():
        return []
    latest = {}
    for rec in journal.read(path):  # a torn last line (killed run) is dropped
        if experiment is None or rec.get("experiment") == experiment:
            latest[tuple(json.dumps(rec.get(k)) for k in KEY)] = rec
    return list(latest.values())


def measured_once(name: str, key: dict, measure):
    """The value saved under `key` in results/<...>/<name>.jsonl, else `measure()`, saved there: a
    measurement several tables ask for (a timing row) is made once, and every table shows the same."""
    path = store_path(name)
    key = json.loads(json.dumps(key, sort_keys=True))
    if path.exists():
        for rec in journal.read(path):
            if rec.get("key") == key:
                timeline.record("measure", name=name, key=key, reused=True)
                return rec["value"]
    watch = timeline.Stopwatch()
    value = measure()
    timeline.record("measure", name=name, key=key, reused=False, seconds=watch.total())
    path.parent.mkdir(parents=True, exist_ok=True)
    journal.append(path, [{"key": key, "value": value}])
    return value


def find(records: list[dict], **match) -> list[dict]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


def save_json(name: str, obj) -> Path:
    """Save a non-record result (a curve, a matrix) as <name>.json in the results folder
    (`vtr.paths.results_dir()`: results/<profile>/<full|smoke>/<inputs fingerprint>)."""
    path = results_dir() / f"{name}.json"
    journal.write_atomic(path, json.dumps(obj, indent=1))
    return path


def load_json(name: str):
    path = results_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
