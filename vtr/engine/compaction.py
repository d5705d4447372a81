"""Compacting a layer's rows to the tokens that survive: the one layout every pruning step uses
(the prefill's gather before a layer, `PruningSession.logits_from_layer`'s continuation).

Each sample keeps its surviving positions in their original order, left-padded to the batch's
widest survivor count (padding first, so each sample's last row stays its last token)."""
from __future__ import annotations

import torch


def compaction(survive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order (B, W) input rows to take, valid (B, W) bool) for the (B, T) bool mask of survivors,
    W the largest survivor count of a sample."""
    T = survive.shape[1]
    width = int(survive.sum(1).max())
    ar = torch.arange(T, device=survive.device)
    order = torch.sort(torch.where(survive, ar + T, ar), dim=1).indices[:, T - width:]
    return order, torch.gather(survive, 1, order)


def take(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The rows `order` (B, W) of `x` (B, T, ...) along dim 1."""
    B, width = order.shape
    idx = order.view(B, width, *([1] * (x.ndim - 2))).expand(B, width, *x.shape[2:])
    return torch.gather(x, 1, idx)


def take_positions(pos: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The positions of the rows `order` from (B, T) positions or (3, B, T) multimodal ones."""
    if pos.ndim == 2:
        return torch.gather(pos, 1, order)
    return torch.gather(pos, 2, order[None].expand(pos.shape[0], -1, -1))
