"""Resumable JSONL trace of search evaluations, and the memoising scorer the searches share.

One trace file holds one search. Line 1 is a header `{"type": "header", "version": 1, "config":
{...}}` with the search configuration (search name, n_layers, n_vision, tolerance or budget,
scorer name, ...). Every later line is one finished evaluation, appended, flushed and fsynced as
soon as the scorer returns:

    {"key": "n576:576,576,288", "plan": {...}, "score": 0.71, "flops_ratio": 0.6 | null,
     "seconds": 12.3, "kind": "gsearch", ...free metadata (layer, params, ...)}

Reopening the file loads the scored plans, so a rerun of the same search looks every plan up first and
never scores it again. Reopening with a different configuration raises `TraceError` (mixing
scores of different tolerances, budgets or scorers would silently corrupt a search). A torn last
line (process killed mid-write) is dropped with a warning and cut from the file; a bad line
anywhere else is an error.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from .. import journal
from ..errors import InputError
from ..plan import Plan

FORMAT_VERSION = 1
_RESERVED = {"type", "key", "plan", "score", "flops_ratio", "seconds", "kind"}


class TraceError(InputError):
    """An unreadable trace, or a trace written by a search with another configuration."""


def plan_key(plan: Plan) -> str:
    """Canonical key of a plan: n_vision, optional encoder keep, then the per-layer counts."""
    enc = "" if plan.encoder_keep is None else f"e{plan.encoder_keep}"
    return f"n{plan.n_vision}{enc}:" + ",".join(str(k) for k in plan.keep)


def scorer_name(score_fn: Callable, name: str | None = None) -> str:
    """Name recorded in the trace header: explicit, `score_fn.name`, its qualname, or its class."""
    return (name or getattr(score_fn, "name", None) or getattr(score_fn, "__qualname__", None)
            or type(score_fn).__qualname__)


def scorer_fingerprint(score_fn: Callable) -> dict:
    """What the scorer depends on (model, weights, split, limit, query, code ...), as the scorer
    states it in a `fingerprint` dict attribute ({} if it states none); goes into the header."""
    return dict(getattr(score_fn, "fingerprint", None) or {})


def _canon(obj: Any) -> Any:
    return json.loads(json.dumps(obj))  # tuples -> lists, so configs compare as stored


class Trace:
    """Append-only JSONL trace; `Trace(None)` keeps everything in memory only."""

    def __init__(self, path: str | os.PathLike | None = None, config: dict | None = None):
        self.path = Path(path) if path is not None else None
        self.header: dict | None = None
        self.scored: list[dict] = []  # the evaluation lines, in file order
        self._by_key: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            self._load()
        if config is not None:
            self.bind(config)

    # ------------------------------------------------------------------ reading
    def _load(self) -> None:
        try:
            objs = journal.read(self.path)
        except journal.JournalError as e:
            raise TraceError(str(e)) from None
        if not objs:
            return
        if objs[0].get("type") != "header":
            raise TraceError(f"{self.path}: the first line is not a trace header")
        if objs[0].get("version") != FORMAT_VERSION:
            raise TraceError(f"{self.path}: trace format version {objs[0].get('version')}, "
                             f"this code reads version {FORMAT_VERSION}")
        self.header = objs[0]
        for i, rec in enumerate(objs[1:], 2):
            if "key" not in rec or "score" not in rec:
                raise TraceError(f"{self.path}: line {i} has no key/score: {str(rec)[:80]}")
            self._add(rec)

    def _add(self, rec: dict) -> None:
        self.scored.append(rec)
        self._by_key.setdefault(rec["key"], rec)

    def __len__(self) -> int:
        return len(self.scored)

    def __contains__(self, plan: Plan) -> bool:
        return plan_key(plan) in self._by_key

    def get(self, plan: Plan) -> dict | None:
        return self._by_key.get(plan_key(plan))

    def lookup(self, plan: Plan) -> float | None:
        """The memoised score of `plan`, or None if it was never evaluated."""
        rec = self.get(plan)
        return None if rec is None else rec["score"]

    # ------------------------------------------------------------------ writing
    def _append(self, obj: dict) -> None:
        if self.path is not None:
            journal.append(self.path, [obj])

    def bind(self, config: dict) -> None:
        """Write the header of a new trace, or check that an existing one has the same config."""
        config = _canon(config)
        if self.header is None:
            if self.scored:
                raise TraceError(f"{self.path}: evaluation lines without a header")
            self.header = {"type": "header", "version": FORMAT_VERSION, "config": config,
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            self._append(self.header)
            return
        old = self.header.get("config", {})
        keys = [k for k in sorted(set(old) | set(config)) if old.get(k) != config.get(k)]
        if keys:
            where = self.path if self.path is not None else "in-memory trace"
            detail = "; ".join(f"{k}: {old.get(k)!r} in the trace, {config.get(k)!r} now" for k in keys)
            raise TraceError(f"{where} was written by a search with other {', '.join(keys)} ({detail}); "
                             "rerun with the original settings to resume, or use a new trace file (--out) "
                             "to start afresh")

    def record(self, plan: Plan, score: float, *, kind: str, flops_ratio: float | None = None,
               seconds: float = 0.0, **meta: Any) -> dict:
        """Append one finished evaluation (a plan already in the trace is not written again)."""
        old = self.get(plan)
        if old is not None:
            return old
        clash = _RESERVED & set(meta)
        if clash:
            raise ValueError(f"metadata keys {sorted(clash)} are reserved")
        rec = {"key": plan_key(plan), "plan": json.loads(plan.to_json()), "score": float(score),
               "flops_ratio": None if flops_ratio is None else float(flops_ratio),
               "seconds": float(seconds), "kind": kind, **_canon(meta)}
        self._append(rec)
        self._add(rec)
        return rec


class MemoScorer:
    """`score_fn` memoised through a trace.

    `evaluations` counts the distinct plans the search asked for (scored now or found in the
    trace), so a resumed search reports the same count as an uninterrupted one; `calls` counts
    the real scorer calls of this process.
    """

    def __init__(self, score_fn: Callable[[Plan], float], trace: Trace, kind: str,
                 flops_fn: Callable[[Plan], float] | None = None):
        self.score_fn, self.trace, self.kind, self.flops_fn = score_fn, trace, kind, flops_fn
        self.requested: dict[str, None] = {}
        self.calls = 0

    @property
    def evaluations(self) -> int:
        return len(self.requested)

    def scored(self) -> tuple[dict, ...]:
        """The trace lines of the plans this search asked for, in the order first asked."""
        return tuple(self.trace._by_key[k] for k in self.requested if k in self.trace._by_key)

    def __call__(self, plan: Plan, **meta: Any) -> float:
        self.requested.setdefault(plan_key(plan), None)
        score = self.trace.lookup(plan)
        if score is not None:
            return score
        t0 = time.perf_counter()
        score = float(self.score_fn(plan))
        seconds = time.perf_counter() - t0
        self.calls += 1
        if not math.isfinite(score):
            raise ValueError(f"the scorer returned {score} for plan {plan.keep}")
        flops = None if self.flops_fn is None else float(self.flops_fn(plan))
        # a scorer may say how it scored (a sequential test: the questions it used); kept in the trace
        extra = getattr(self.score_fn, "last_meta", None) or {}
        self.trace.record(plan, score, kind=self.kind, flops_ratio=flops, seconds=seconds, **meta, **extra)
        return score
