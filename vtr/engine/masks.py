"""The 4-D attention masks the engine passes a layer once tokens are removed: causal and padding
aware per sample, widened to the keys the layer's KV cache returns, in the format of the attention
implementation (boolean for SDPA, additive for eager)."""
from __future__ import annotations

import torch

from .policy import UnsupportedInput


def causal_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, T) valid -> (B, 1, T, T) bool: causal, padding keys masked, padding rows see themselves."""
    B, T = valid.shape
    causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()
    m = causal[None] & valid[:, None, :]
    m |= torch.eye(T, dtype=torch.bool, device=valid.device)[None] & ~valid[:, :, None]
    return m[:, None]


def additive(mask: torch.Tensor, dtype) -> torch.Tensor:
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def formatted(mask: torch.Tensor, dtype, float_mask: bool) -> torch.Tensor:
    """`mask` as the attention implementation takes it (eager adds it to the logits: 0 / -inf)."""
    return additive(mask, dtype) if float_mask else mask


def fit_mask(mask: torch.Tensor, cache, index: int, dtype, float_mask: bool, memo: dict) -> torch.Tensor:
    """The engine's (B, 1, t, k) bool mask over the keys it knows, widened with masked columns
    to the keys layer `index`'s cache returns (a static cache returns all its max_cache_len
    slots, the unwritten ones last), formatted; memoised in `memo` by that width."""
    t, k = mask.shape[-2:]
    width = k
    if cache is not None:
        width, offset = cache.get_mask_sizes(t, index)
        if offset or width < k:
            raise UnsupportedInput(f"layer {index}'s KV cache returns keys {offset}..{offset + width} for "
                                   f"{k} known ones (a sliding-window cache?): not supported under pruning")
    if width not in memo:
        if width > k:
            mask = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], width - k)], -1)
        memo[width] = formatted(mask, dtype, float_mask)
    return memo[width]
