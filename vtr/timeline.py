"""Where a run's time goes. With `$VTR_TIMELINE` naming a file, every evaluation and every model load
appends one JSON line to it: the process, what ran, seconds by stage and the feature memos' counters
(`.ci/timeline.py` sums a file per chapter). Without it nothing is written and nothing is timed.

Several processes (the book's notebook kernels) may append to one file: each line is one `write` of
a file opened for appending, so lines never interleave."""
from __future__ import annotations

import json
import os
import time

ENV = "VTR_TIMELINE"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def record(event: str, **fields) -> None:
    """Append {"event", "pid", "time", **fields} to $VTR_TIMELINE (no-op when unset)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **fields}, default=str)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


class Stopwatch:
    """Seconds per named stage, summed over repeated `with watch("stage"):` blocks."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    def __call__(self, stage: str):
        return _Lap(self, stage)

    def total(self) -> float:
        return time.perf_counter() - self.start


class _Lap:
    def __init__(self, watch: Stopwatch, stage: str):
        self.watch, self.stage = watch, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        s = self.watch.seconds
        s[self.stage] = s.get(self.stage, 0.0) + time.perf_counter() - self.t0
