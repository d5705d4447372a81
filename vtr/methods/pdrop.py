"""PyramidDrop (Xing et al., 2024, "PyramidDrop: Accelerating Your Large Vision-Language Models
via Pyramid Visual Redundancy Reduction").

Paper: the 32-layer LLM is split into 4 stages ending at layers 8/16/24; at the end of each stage
the vision tokens are ranked by the attention the *last instruction token* pays to them, computed
from that layer's own query/key projections (a light-weight recomputation, so no full attention
map is needed), and a fraction lambda = 0.5 of them is kept. So layer l sees n * lambda^s tokens,
s = the number of boundaries <= l (576 / 288 / 144 / 72 on LLaVA-1.5).

Here:
* boundaries at round(L * i / 4), i = 1..3 (8/16/24 for L = 32; 1/2/3 for L = 4), or `layers=`;
* keep count of stage s = round(n * lambda^s) (rounding from the exact product, not stage by
  stage, so the counts are non-increasing in s and in lambda);
* score = `query="last"` (the last token of the prompt, which in the LLaVA chat template is the
  last instruction token) from the boundary layer's own q/k on its input, mean over heads: the
  engine's `PlanPolicy` with `source="current"`, as the paper's light-weight attention is
  computed (`source="previous"`, the previous layer's attention map as FastV reads it, is
  available for comparison);
* at a budget (mean keep rate or FLOPs fraction), lambda is solved by bisection on [0, 1] for the
  largest plan of the family whose cost `info.cost(plan, kind)` is <= budget (the cost is a
  non-decreasing step function of lambda, so bisection converges onto the last feasible step; the
  step between neighbouring plans is one token in one stage, so the plan is within one token per
  layer of the budget). The first stage always keeps every token, so budgets below
  (first boundary) / L (keep) are infeasible with the default layers: pass earlier `layers=`.
"""
from __future__ import annotations

from typing import Sequence

from ..engine.policy import PlanPolicy
from ..plan import Plan, PlanError
from .base import ModelInfo, check_bool, check_budget, check_budget_kind, check_layers, check_number, register

DEFAULT_LAMBDA = 0.5
_EPS = 1e-9


def default_layers(n_layers: int) -> tuple[int, ...]:
    """Stage boundaries: round(L i / 4) for i = 1..3 (8/16/24 of 32)."""
    return tuple(round(n_layers * i / 4) for i in (1, 2, 3))


def _check_layers(layers: Sequence[int] | str, n_layers: int) -> tuple[int, ...]:
    """Stage boundaries: increasing layers in 0..n_layers (a sequence, or text such as "8,16,24")."""
    return check_layers("pdrop", "layers", layers, 0, n_layers)


def plan_from_lambda(n_layers: int, n_vision: int, layers: Sequence[int], lam: float) -> Plan:
    """Stage s (after s boundaries) keeps round(n_vision * lam**s) tokens."""
    check_number("pdrop", "lam", lam, 0.0, 1.0)
    layers = _check_layers(layers, n_layers)
    counts = []
    for layer in range(n_layers):
        s = sum(1 for b in layers if b <= layer)
        counts.append(min(n_vision, int(n_vision * lam ** s + 0.5)))
    return Plan.from_counts(counts, n_vision, n_layers)


def solve_lambda(info: ModelInfo, budget: float, kind: str = "keep",
                 layers: Sequence[int] | None = None, iters: int = 60) -> tuple[float, Plan]:
    """Largest-cost PyramidDrop plan with cost <= budget: (lambda, plan). Raises PlanError if even
    lambda = 0 (nothing after the first boundary) costs more than the budget."""
    check_budget(budget), check_budget_kind(kind)
    layers = default_layers(info.n_layers) if layers is None else _check_layers(layers, info.n_layers)

    def plan_at(lam):
        return plan_from_lambda(info.n_layers, info.n_vision, layers, lam)

    if info.cost(plan_at(1.0), kind) <= budget + _EPS:
        return 1.0, plan_at(1.0)
    if info.cost(plan_at(0.0), kind) > budget + _EPS:
        raise PlanError(f"PyramidDrop cannot meet budget {budget:.4g} ({kind}): even dropping every vision "
                        f"token at the first boundary (layer {layers[0] if layers else 0}) costs "
                        f"{info.cost(plan_at(0.0), kind):.4g}; it needs earlier stage boundaries (layers)")
    lo, hi = 0.0, 1.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if info.cost(plan_at(mid), kind) <= budget + _EPS else (lo, mid)
    return lo, plan_at(lo)


def plan_for(info: ModelInfo, budget: float | None = None, kind: str = "keep",
             layers: Sequence[int] | None = None, lam: float = DEFAULT_LAMBDA) -> Plan:
    layers = default_layers(info.n_layers) if layers is None else layers
    if budget is None:
        return plan_from_lambda(info.n_layers, info.n_vision, layers, lam)
    return solve_lambda(info, budget, kind, layers)[1]


@register("pdrop")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep",
         layers: Sequence[int] | None = None, lam: float = DEFAULT_LAMBDA, query: str = "last",
         scale_to_input: bool = False, source: str = "current"):
    """PyramidDrop policy; with a budget, `lam` is ignored (solved)."""
    scale_to_input = check_bool("pdrop", "scale_to_input", scale_to_input)
    return PlanPolicy(plan_for(info, budget, kind, layers, lam), query=query, scale_to_input=scale_to_input,
                      source=source)
