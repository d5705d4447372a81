"""Decoder-side selection with a custom rule: `SelectionPolicy`, a `PlanPolicy` whose survivors are
chosen by an overridable `select(layer, view, k)` instead of the attention ranking (used by
`random`, `uniform` and `sparsevlm`), and `present_by_index`."""
from __future__ import annotations

import torch

from ..engine.policy import LayerView, PlanPolicy


class SelectionPolicy(PlanPolicy):
    """A static `Plan` with a custom selection rule: subclasses override `select(layer, view, k)`,
    which returns a (B, T) bool mask holding k[b] of sample b's present vision tokens."""


def present_by_index(view: LayerView, b: int) -> torch.Tensor:
    """Positions of sample b's present vision tokens, in order of original vision index."""
    pos = (view.vision[b] & view.valid[b]).nonzero().flatten()
    return pos[torch.argsort(view.vision_index[b, pos], stable=True)]
