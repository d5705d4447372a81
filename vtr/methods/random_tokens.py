"""Random selection: a cost-matched ablation of FastV's attention ranking.

Not a paper method: the same schedule as FastV (all tokens up to layer K, then one count; K =
FastV's `default_layer`, i.e. 2 of 32, and R = 50% unless a budget is given, in which case the
count, and K if needed, come from `fastv.plan_for` / `solve_keep_after`), but the survivors are a
uniformly random subset of each sample's vision tokens instead of the most-attended ones.

Randomness: a seeded `torch.Generator` owned by the policy, consumed in order: prefill after
prefill, sample after sample, boundary after boundary (one `randperm` over the sample's present
vision tokens, ordered by original index). So every sample of a batch, and every batch, gets its
own subset, and a fresh policy with the same seed replays exactly the same subsets for the same
sequence of inputs (`reset()` rewinds it). Selection never depends on padding or batch width.
"""
from __future__ import annotations

import torch

from ..plan import Plan, PlanError
from . import fastv
from .base import ModelInfo, check_bool, register
from .selection import SelectionPolicy, present_by_index


class RandomPolicy(SelectionPolicy):
    def __init__(self, plan: Plan, seed: int = 0, scale_to_input: bool = False):
        super().__init__(plan, scale_to_input=scale_to_input)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        self.gen = torch.Generator().manual_seed(self.seed)

    def rule(self) -> dict:
        return {"select": "random", "seed": self.seed}

    def select(self, layer, view, k):
        keep = torch.zeros_like(view.vision)
        for b in range(view.vision.shape[0]):
            pos = present_by_index(view, b)
            chosen = torch.randperm(len(pos), generator=self.gen)[: int(k[b])].to(pos.device)
            keep[b, pos[chosen]] = True
        return keep


@register("random")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
         R: float = 0.5, seed: int = 0, scale_to_input: bool = False):
    try:
        plan = fastv.plan_for(info, budget, kind, K, R, method="random")
    except PlanError as e:
        raise PlanError(f"random: {e} (it shares FastV's schedule)") from e
    scale_to_input = check_bool("random", "scale_to_input", scale_to_input)
    return RandomPolicy(plan, seed=seed, scale_to_input=scale_to_input)
