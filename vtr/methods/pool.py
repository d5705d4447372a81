"""Average pooling of the projected token grid: the plain spatial baseline of vision-token reduction.

Paper: no single paper; benchmark studies of token reduction use it as the reference that any
scored method must beat: the image tokens, laid out as their patch grid, are average-pooled to a
smaller grid (e.g. 2 x 2 windows turn 24 x 24 = 576 tokens into 12 x 12 = 144), after the projector
(LLaVA-style pooling of the projected features).
Here: the projected features `EncoderView.features` on the tower's R x C grid (raster order) are
pooled with `torch.nn.functional.adaptive_avg_pool2d` to an r x c grid: window i covers rows
floor(i R / r) .. ceil((i + 1) R / r) - 1 (plain non-overlapping windows when r divides R; windows
may overlap by a row otherwise), the same for columns. Grid for a count k (`grid_for`): the largest
r x c <= k with c in {r, r + 1}, r = isqrt(k) (36 -> 6 x 6, 72 -> 8 x 9, 18 -> 4 x 4): the image's
aspect is kept within one column, and the realised count r c is never above the budget's (at
most isqrt(k) below it). The pooled token (i, j) sits in the slot of the original patch
holding its window's centre, rows floor((i + 1/2) R / r), columns likewise (`grid_slots`), so it
keeps that patch's position id; the other slots are dropped. Budget: the count of
`encoder_count` (round(b N), or the largest fitting FLOPs), then its grid; the static plan holds
r c. Without a budget: a quarter of the tokens (2 x 2 windows on an even grid). Needs one square
patch grid per image (refused otherwise, e.g. LLaVA-NeXT crops).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine.policy import EncoderView, UnsupportedInput
from .base import ModelInfo, check_budget_kind, register
from .encoder import EncoderPolicy, encoder_count, encoder_plan


def grid_for(count: int, rows: int, cols: int) -> tuple[int, int]:
    """(r, c): the largest r x c <= count with c in {r, r + 1}, within the rows x cols grid."""
    if count < 1:
        raise ValueError(f"a grid needs at least one token, got {count}")
    if count >= rows * cols:
        return rows, cols
    r = min(math.isqrt(count), rows)
    c = r + 1 if r * (r + 1) <= count and r + 1 <= cols else r
    return r, min(c, cols)


def grid_slots(r: int, c: int, rows: int, cols: int) -> torch.Tensor:
    """(r * c,) raster indices into the rows x cols grid of the patches holding the centres of an
    r x c grid's cells (increasing, distinct)."""
    ri = [int((i + 0.5) * rows / r) for i in range(r)]
    ci = [int((j + 0.5) * cols / c) for j in range(c)]
    return torch.tensor([a * cols + b for a in ri for b in ci], dtype=torch.long)


def grid_of(view: EncoderView, method: str) -> tuple[int, int]:
    if view.grid is None:
        raise UnsupportedInput(f"{method} needs the image tokens to form one square patch grid "
                               "(not LLaVA-NeXT crops or several images)")
    return view.grid


def place(view: EncoderView, small: torch.Tensor, r: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, keep): the (B, r c, d) grid written into the slots `grid_slots` picks, the rest dropped."""
    rows, cols = view.grid
    slots = grid_slots(r, c, rows, cols).to(view.features.device)
    feats = view.features.clone()
    feats[:, slots] = small.to(feats.dtype)
    keep = torch.zeros(feats.shape[:2], dtype=torch.bool, device=feats.device)
    keep[:, slots] = True
    return feats, keep


def pool_grid(features: torch.Tensor, grid: tuple[int, int], r: int, c: int) -> torch.Tensor:
    """(B, r c, d): the (B, R C, d) features on the R x C grid average-pooled to r x c (raster order)."""
    B, N, d = features.shape
    x = features.float().transpose(1, 2).reshape(B, d, *grid)
    return F.adaptive_avg_pool2d(x, (r, c)).reshape(B, d, r * c).transpose(1, 2)


class PoolPolicy(EncoderPolicy):
    def reduce(self, view: EncoderView, k: int | None):
        rows, cols = grid_of(view, "pool")
        r, c = grid_for(k, rows, cols)
        return place(view, pool_grid(view.features, (rows, cols), r, c), r, c)


def grid_count(info: ModelInfo, budget: float | None, kind: str, default_share: float = 0.25) -> int:
    """Tokens of the grid a budget allows (r c of `grid_for`) on the model's square grid."""
    if budget is None:
        check_budget_kind(kind)
        count = max(1, round(info.n_vision * default_share))
    else:
        count = encoder_count(info, budget, kind)
    side = math.isqrt(info.n_vision)
    if side * side != info.n_vision:  # not one square grid: the policy refuses such inputs
        return count
    r, c = grid_for(count, side, side)
    return r * c


@register("pool")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep") -> PoolPolicy:
    """Average pooling of the projected grid to the largest near-square grid the budget allows."""
    count = grid_count(info, budget, kind)
    return PoolPolicy(count, info.n_vision, encoder_plan(info, count))
