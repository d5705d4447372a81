"""Composition of policies: a token survives a layer boundary only if every policy keeps it.

DyVTE claims to be complementary to token-wise methods; `fastv_dyvte` is FastV's selection
with DyVTE's per-sample exit on top (both decide independently at every boundary)."""
from __future__ import annotations

from ..engine.policy import Policy
from .base import ModelInfo, register


class AllOf(Policy):
    def __init__(self, *policies: Policy):
        self.policies = policies

    def check_model(self, n_layers: int) -> None:
        for p in self.policies:
            p.check_model(n_layers)

    def start(self, batch_size: int) -> None:
        for p in self.policies:
            p.start(batch_size)

    def keep_before(self, layer, view):
        keep = None
        for p in self.policies:
            k = p.keep_before(layer, view)
            if k is not None:
                keep = k if keep is None else keep & k
        return keep


@register("fastv_dyvte")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", seed: int = 0,
         threshold: float = 0.5, routers: str | None = None):
    from . import dyvte, fastv

    return AllOf(fastv.make(info, budget, kind),
                 dyvte.make(info, seed=seed, threshold=threshold, routers=routers))
