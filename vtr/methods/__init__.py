"""Every method as a factory `make(info, budget=None, kind="keep", **hyperparameters) -> Policy`.

Import this package to fill the registry; `get(name)` returns a factory, `names()` lists them.
"""
from __future__ import annotations

from ..errors import InputError
from .base import BUDGET_KINDS, REGISTRY, ModelInfo, model_info

# Each module registers its factories (`base.register`) when imported: decoder-side, then
# encoder-side, then compositions of them.
from . import fastv, pdrop, random_tokens, sparsevlm, uniform, vtw  # noqa: E402,F401  (decoder side)
from . import cls_knee, prumerge, tome, visionzip  # noqa: E402,F401  (encoder side)
from . import compose, dyvte  # noqa: E402,F401


# What each method ranks vision tokens by, and where that score is computed (the book's tables
# print it; `tests/methods/test_common.py` checks it against each policy's `source`). "previous":
# the attention computed inside layer l-1 (its q/k on its own input) ranks the tokens entering
# layer l, as FastV reads layer K-1's attention map; "current": layer l's own q/k on its input
# (PyramidDrop's light-weight attention).
SCORED_FROM = {
    "fastv": "previous layer: last token's attention in layer K-1",
    "pdrop": "current layer: last token's attention from layer l's q/k, at each stage boundary",
    "sparsevlm": "current layer: text raters' attention from layer l's q/k",
    "random": "no score: a seeded random subset (FastV's schedule)",
    "uniform": "no score: evenly spaced tokens (FastV's schedule)",
    "vtw": "no score: every vision token leaves at layer K",
    "visionzip": "vision encoder: CLS attention in the feature layer (dominant), then merging",
    "prumerge": "vision encoder: CLS attention outliers (IQR), then merging",
    "prumerge_plus": "vision encoder: CLS attention outliers plus spatially sampled tokens, then merging",
    "tome": "vision encoder: key similarity (bipartite merging)",
    "cls_knee": "vision encoder: CLS-patch similarity, cut at the knee; then text-image attention in the decoder",
    "dyvte": "a router on the last token's hidden state decides at each layer when all vision tokens leave",
    "fastv_dyvte": "FastV's previous-layer score, then DyVTE's exit",
}


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str):
    if name not in REGISTRY:
        raise InputError(f"unknown method {name!r}; known: {', '.join(names())}")
    return REGISTRY[name]


__all__ = ["BUDGET_KINDS", "SCORED_FROM", "ModelInfo", "model_info", "names", "get"]
