"""The one number of an evaluation's metrics (what tables and searches compare)."""
from __future__ import annotations


def primary(metrics: dict) -> float | None:
    """The one number of a metrics dict: testbed "overall", a benchmark's "accuracy" (POPE: mean over
    its splits), or MME's "total" (perception + cognition score)."""
    for key in ("overall", "accuracy", "total"):
        if key in metrics:
            return metrics[key]
    return None


def per_question(samples, predictions: list[str]) -> list[float]:
    """Each question's score in [0, 1], in order: the testbed's exact answer, or on a profile's
    joined benchmarks each benchmark's own per-question rule (`vtr.benchmarks.suite.hits`)."""
    from ..benchmarks import suite

    if samples and "benchmark" in samples[0].meta:
        return suite.hits(samples, predictions)
    return [float(p == s.answer) for s, p in zip(samples, predictions)]
