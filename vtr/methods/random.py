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

`SelectionPolicy` (also used by `uniform` and `sparsevlm`) is a `PlanPolicy` whose survivors are
chosen by an overridable `select(layer, view, k)` instead of the attention ranking.
"""
from __future__ import annotations

import torch

from ..engine.policy import LayerView, PlanPolicy
from ..plan import Plan, PlanError
from . import fastv
from .base import ModelInfo, register


class SelectionPolicy(PlanPolicy):
    """A static `Plan` with a custom selection rule: before layer l, `select(layer, view, k)` returns
    a (B, T) bool mask holding k[b] of sample b's present vision tokens (text entries are ignored)."""

    def select(self, layer: int, view: LayerView, k: torch.Tensor) -> torch.Tensor:
        return view.keep_top(k, self.query, self.heads)

    def keep_before(self, layer: int, view: LayerView) -> torch.Tensor | None:
        if self._n0 is None:
            self._n0 = view.n_vision.clone()
            off = (self._n0 != self.plan.n_vision).nonzero()
            if len(off) and not self.scale_to_input:
                b = int(off[0])
                raise PlanError(f"the plan was made for {self.plan.n_vision} vision tokens but sample {b} has "
                                f"{int(self._n0[b])}; pass scale_to_input=True to apply its keep rates instead")
        k = torch.minimum(self.target(layer, self._n0), view.n_vision)
        if bool((k == view.n_vision).all()):
            return None
        keep = self.select(layer, view, k)
        return (keep & view.vision & view.valid) | ~view.vision


def present_by_index(view: LayerView, b: int) -> torch.Tensor:
    """Positions of sample b's present vision tokens, in order of original vision index."""
    pos = (view.vision[b] & view.valid[b]).nonzero().flatten()
    return pos[torch.argsort(view.vision_index[b, pos], stable=True)]


class RandomPolicy(SelectionPolicy):
    def __init__(self, plan: Plan, seed: int = 0, scale_to_input: bool = False):
        super().__init__(plan, scale_to_input=scale_to_input)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        self.gen = torch.Generator().manual_seed(self.seed)

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
        plan = fastv.plan_for(info, budget, kind, K, R)
    except PlanError as e:
        raise PlanError(f"random: {e} (it shares FastV's schedule)") from e
    return RandomPolicy(plan, seed=seed, scale_to_input=scale_to_input)
