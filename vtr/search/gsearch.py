"""G-Search: greedy, shallow-to-deep search for the least vision tokens each decoder layer needs.

Paper (Zhao et al., "Accelerating Multimodal Large Language Models by Searching Optimal Vision
Token Reduction", arXiv 2412.00556, CVPR 2025): under the assumption that the number of essential
vision tokens does not increase with depth, a greedy search from the shallowest to the deepest
layer finds the optimal reduction strategy, i.e. the least keep count per layer that keeps the
accuracy of the unpruned model (within a tolerance). The first LLM layer keeps every token (its
attention ranking is unreliable).

The paper is silent on the inner search; we chose:

* reference = score of the full plan (or the `reference` given); a plan is *feasible* when
  `score >= reference - tolerance` (1e-12 float slack). `tolerance` is absolute, on the scorer's
  own scale: with accuracy in [0, 1], 0.005 means 0.5 points.
* layers `< start_layer` keep all `n_vision` tokens (paper "layer 1" = our index 0, hence the
  default `start_layer=1`);
* for l = start_layer .. n_layers-1, binary search the least k in [0, k_(l-1)] such that the plan
  with the already fixed counts above l and k at layer l *and every deeper layer* (deeper layers
  inherit the value under test) is feasible. k_(l-1) itself is known feasible: it is the plan
  accepted at the previous layer (the full plan for the first searched layer), so it is never
  re-scored. The result is non-increasing by construction.
* every scorer call is memoised in memory and through the `Trace`, so a killed run resumes
  without repeating an evaluation. At most n_layers * ceil(log2(n_vision + 1)) + 1 distinct plans
  are scored.

Under the assumption (feasible iff keep >= need pointwise, need non-increasing) the result is the
pointwise-least feasible plan, hence the one with least FLOPs for any FLOPs count increasing in
each layer's tokens.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

from tqdm.auto import tqdm

from ..plan import Plan
from .traces import MemoScorer, Trace, scorer_fingerprint, scorer_name

FEASIBLE_SLACK = 1e-12


@dataclass(frozen=True)
class GSearchResult:
    plan: Plan
    reference: float
    score: float
    evaluations: int                 # distinct plans scored by the search (fresh or from the trace)
    flops_ratio: float | None        # flops_fn(plan), None without flops_fn
    scored: tuple[dict, ...] = field(default=(), compare=False, repr=False)  # their trace lines
    scorer_calls: int = field(default=0, compare=False)  # real calls in this process


def max_evaluations(n_layers: int, n_vision: int) -> int:
    """Upper bound on distinct scorer calls of `gsearch`."""
    return n_layers * math.ceil(math.log2(n_vision + 1)) + 1


def gsearch(score_fn: Callable[[Plan], float], n_layers: int, n_vision: int, tolerance: float, *,
            start_layer: int = 1, reference: float | None = None,
            flops_fn: Callable[[Plan], float] | None = None, trace: Trace | None = None,
            progress: bool = True, name: str | None = None) -> GSearchResult:
    """Run G-Search. `score_fn(plan)` is higher-is-better; `name` names the scorer in the trace."""
    if not isinstance(n_layers, numbers.Integral) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
    if not isinstance(n_vision, numbers.Integral) or n_vision < 0:
        raise ValueError(f"n_vision must be a non-negative integer, got {n_vision!r}")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance)) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (absolute, on the score scale), "
                         f"got {tolerance!r}")
    if not 0 <= start_layer <= n_layers:
        raise ValueError(f"start_layer must be in 0..{n_layers}, got {start_layer}")
    if reference is not None and not math.isfinite(reference):
        raise ValueError(f"reference must be finite, got {reference}")

    n_layers, n_vision = int(n_layers), int(n_vision)
    trace = trace if trace is not None else Trace(None)
    trace.bind({"search": "gsearch", "n_layers": n_layers, "n_vision": n_vision,
                "tolerance": float(tolerance), "start_layer": start_layer,
                "reference": None if reference is None else float(reference),
                "scorer": scorer_name(score_fn, name), **scorer_fingerprint(score_fn)})
    memo = MemoScorer(score_fn, trace, "gsearch", flops_fn)

    if reference is None:
        reference = memo(Plan.full(n_layers, n_vision), role="reference")
    threshold = reference - tolerance - FEASIBLE_SLACK
    keep = [n_vision] * n_layers
    for layer in tqdm(range(start_layer, n_layers), desc="G-Search layers", disable=not progress):
        lo, hi = 0, keep[layer - 1] if layer > 0 else n_vision
        while lo < hi:
            mid = (lo + hi) // 2
            cand = Plan(tuple(keep[:layer]) + (mid,) * (n_layers - layer), n_vision)
            if memo(cand, layer=layer, probe=mid) >= threshold:
                hi = mid
            else:
                lo = mid + 1
        keep[layer:] = [hi] * (n_layers - layer)

    plan = Plan(tuple(keep), n_vision)
    score = memo(plan, role="final")  # already scored, except full plan with a given reference
    bound = max_evaluations(n_layers, n_vision)
    assert memo.evaluations <= bound, (memo.evaluations, bound)
    return GSearchResult(plan=plan, reference=float(reference), score=score,
                         evaluations=memo.evaluations,
                         flops_ratio=None if flops_fn is None else float(flops_fn(plan)),
                         scored=memo.scored(), scorer_calls=memo.calls)
