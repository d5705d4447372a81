"""The one number of an evaluation's metrics (what tables and searches compare)."""
from __future__ import annotations


def headline(metrics: dict) -> float | None:
    """The one number of a metrics dict: testbed "overall", a benchmark's "accuracy" (POPE: mean over
    its splits), or MME's "total" (perception + cognition score)."""
    for key in ("overall", "accuracy", "total"):
        if key in metrics:
            return metrics[key]
    return None
