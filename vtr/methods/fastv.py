"""FastV (Chen et al., ECCV 2024, "An Image is Worth 1/2 Tokens After Layer 2").

Paper: after layer K, drop the fraction R of image tokens that receive the least attention from
the last token in layer K-1 (mean over heads); K=2, R=50% by default on 32-layer LLaVA. The
public code runs layer K-1 with `output_attentions` and reads the last row of its map.
Here: the score is that same row, layer K-1's attention (`source="previous"`: layer K-1's q/k on
layer K-1's input, computed for the last row only, so SDPA stays on; a reference test checks the
kept tokens against an eager `output_attentions` run). `source="current"` (layer K's own q/k on
its input, PyramidDrop's rule) is available for comparison. K is scaled to depth
(K = round(2 L / 32), at least 1) unless given. At a budget, K is the largest value
<= the default for which keeping everything in the first K layers still fits, and the count
after K is the largest that fits (`solve_keep_after`).
"""
from __future__ import annotations

from ..engine.policy import PlanPolicy
from ..plan import Plan, PlanError
from .base import ModelInfo, check_int, check_number, register, solve_keep_after


def default_layer(n_layers: int) -> int:
    return max(1, round(2 * n_layers / 32))


def plan_for(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
             R: float = 0.5, method: str = "fastv") -> Plan:
    """FastV's schedule; `method` names the method in an error (random and uniform share it)."""
    K = default_layer(info.n_layers) if K is None else check_int(method, "K", K, 0, info.n_layers)
    R = check_number(method, "R", R, 0.0, 1.0)
    if budget is None:
        return Plan.drop_at(info.n_layers, info.n_vision, K, round((1 - R) * info.n_vision))
    for k_layer in range(K, -1, -1):
        try:
            return solve_keep_after(info, k_layer, budget, kind)
        except PlanError:
            continue
    raise PlanError(f"FastV cannot meet budget {budget:.4g} ({kind})")


@register("fastv")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
         R: float = 0.5, query: str = "last", source: str = "previous"):
    return PlanPolicy(plan_for(info, budget, kind, K, R), query=query, source=source)
