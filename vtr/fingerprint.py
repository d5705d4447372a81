"""Fingerprints of what produced a resumable artefact, and the one rule for resuming with one.

A search trace, an evaluation run file and a router training each record a flat dict of the inputs
that change their results: the model and a digest of its weights, the split, its limit and a
digest of its samples, the method, its hyper-parameters, budget and kind, the query, the seed, and
the version of the code that computes results (`code_version`). Resuming compares the saved dict
with the current one and refuses any difference, naming the fields (`check`): a resumed run never
mixes another configuration's finished work into its own.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .errors import InputError

# The parts of vtr whose code changes a result (not the CLI, the book's plots or the prose helpers).
RESULT_CODE = ("plan.py", "scores.py", "flops.py", "models.py", "engine", "methods", "search", "benchmarks",
               "runners", "evaluation", "testbed/model.py", "testbed/data.py", "testbed/score.py",
               "testbed/runner.py", "testbed/scenes.py", "testbed/tasks.py")


class FingerprintError(InputError):
    """A resumable artefact was made by another configuration."""


def _digest(h: "hashlib._Hash") -> str:
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Digest of the source files in `RESULT_CODE`."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for part in RESULT_CODE:
        path = root / part
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return _digest(h)


def weights_digest(model) -> str:
    """Digest of a model's parameters: every tensor's name, dtype and shape and its first and last
    256 values. Cheap on a multi-GB checkpoint (no full pass over the weights), and two checkpoints
    that differ anywhere a training step touches (every tensor) get different digests."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        for piece in (flat[:256], flat[-256:]):
            h.update(piece.float().cpu().numpy().tobytes())
    return _digest(h)


def split_fingerprint(split) -> dict:
    """{"split", "limit", "samples"}: the split's folder name, the limit it was cut to (None: whole)
    and a digest of its samples' ids, questions and answers."""
    h = hashlib.sha256()
    for s in split.samples:
        h.update(json.dumps([s.id, s.question, s.answer]).encode())
    return {"split": split.folder.name, "limit": getattr(split, "limit", None), "samples": _digest(h)}


def model_fingerprint(runner) -> dict:
    """{"model", "weights"}: the runner's name and its weights' digest (computed once per runner)."""
    if getattr(runner, "_weights_digest", None) is None:
        runner._weights_digest = weights_digest(runner.model)
    return {"model": runner.name, "weights": runner._weights_digest}


def canonical(obj):
    """JSON round trip (tuples -> lists), so fingerprints compare as they are stored."""
    return json.loads(json.dumps(obj))


def check(saved: dict, now: dict, where: str, fresh: str = "delete it or write to another file") -> None:
    """Raise `FingerprintError` naming every field where `saved` and `now` differ."""
    saved, now = canonical(saved), canonical(now)
    diffs = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if diffs:
        detail = "; ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in diffs)
        raise FingerprintError(f"{where} was made with other {', '.join(diffs)} ({detail}); "
                               f"rerun with the same settings to resume, or {fresh} to start afresh")
