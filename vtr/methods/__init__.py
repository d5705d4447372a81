"""Every method as a factory `make(info, budget=None, kind="keep", **hyperparameters) -> Policy`.

Import this package to fill the registry; `get(name)` returns a factory, `names()` lists them.
"""
from __future__ import annotations

import importlib

from ..errors import InputError
from .base import BUDGET_KINDS, REGISTRY, ModelInfo, model_info

_MODULES = ("fastv", "pdrop", "sparsevlm", "vtw", "random", "uniform", "visionzip", "prumerge", "tome", "cls_knee", "dyvte", "compose")
for _m in _MODULES:
    importlib.import_module(f"{__name__}.{_m}")


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str):
    if name not in REGISTRY:
        raise InputError(f"unknown method {name!r}; known: {', '.join(names())}")
    return REGISTRY[name]


__all__ = ["BUDGET_KINDS", "ModelInfo", "model_info", "names", "get"]
