"""Every method as a factory `make(info, budget=None, kind="keep", **hyperparameters) -> Policy`.

Import this package to fill the registry; `get(name)` returns a factory, `names()` lists them.
"""
from __future__ import annotations

from ..errors import InputError
from ..catalogue import METHODS, REGISTERED
from .base import BUDGET_KINDS, REGISTRY, ModelInfo, model_info

# Each module registers its factories (`base.register`) when imported: decoder-side, then
# encoder-side, then compositions of them (imported for that side effect alone, hence F401).
from . import dart, fastv, pdrop, random_tokens, sparsevlm, uniform, vtw  # noqa: F401  (decoder side)
from . import cls_knee, divprune, downsample, pool, prumerge, tome, visionzip  # noqa: F401  (encoder side)
from . import compose, dyvte  # noqa: F401


# What each registered method ranks vision tokens by, and where that score is computed (the book's
# tables print it; `tests/methods/test_common.py` checks it against each policy's `source`).
SCORED_FROM = {m.name: m.scored_from for m in METHODS if m.name in REGISTERED}


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str):
    if name not in REGISTRY:
        raise InputError(f"unknown method {name!r}; known: {', '.join(names())}")
    return REGISTRY[name]


__all__ = ["BUDGET_KINDS", "SCORED_FROM", "ModelInfo", "model_info", "names", "get"]
