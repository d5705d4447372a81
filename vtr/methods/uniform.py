"""Spatially uniform selection: a cost-matched ablation of FastV's attention ranking.

Not a paper method: FastV's schedule (all tokens up to layer K = `fastv.default_layer`, then one
count, R = 50%, or the count meeting a budget via `fastv.plan_for` / `solve_keep_after`), but the
survivors are evenly spaced in the original vision-token order (`view.vision_index`, the raster
order of the patch grid; for LLaVA-NeXT the concatenation of base image and crops, newline tokens
included): of m present tokens, keep the i-th for i = floor(j (m - 1) / (k - 1) + 1/2),
j = 0..k-1 (round-half-up of linspace(0, m - 1, k), so first and last are kept and the indices
are distinct); k = 1 keeps the middle token, (m - 1) // 2. Deterministic, no scores read.
"""
from __future__ import annotations

import torch

from ..plan import Plan, PlanError
from . import fastv
from .base import ModelInfo, check_bool, register
from .selection import SelectionPolicy, present_by_index


def spaced(m: int, k: int) -> list[int]:
    """k distinct evenly spaced indices in 0..m-1 (exact integer round-half-up of linspace)."""
    if not 0 <= k <= m:
        raise ValueError(f"cannot pick {k} of {m} tokens")
    if k == 0:
        return []
    if k == 1:
        return [(m - 1) // 2]
    return [(2 * j * (m - 1) + (k - 1)) // (2 * (k - 1)) for j in range(k)]


class UniformPolicy(SelectionPolicy):
    def __init__(self, plan: Plan, scale_to_input: bool = False):
        super().__init__(plan, scale_to_input=scale_to_input)

    def rule(self) -> dict:
        return {"select": "uniform"}

    def select(self, layer, view, k):
        keep = torch.zeros_like(view.vision)
        for b in range(view.vision.shape[0]):
            pos = present_by_index(view, b)
            idx = torch.tensor(spaced(len(pos), int(k[b])), dtype=torch.long, device=pos.device)
            keep[b, pos[idx]] = True
        return keep


@register("uniform")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
         R: float = 0.5, scale_to_input: bool = False):
    try:
        plan = fastv.plan_for(info, budget, kind, K, R, method="uniform")
    except PlanError as e:
        raise PlanError(f"uniform: {e} (it shares FastV's schedule)") from e
    return UniformPolicy(plan, scale_to_input=check_bool("uniform", "scale_to_input", scale_to_input))
