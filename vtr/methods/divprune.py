"""DivPrune (Alvar et al., CVPR 2025, "DivPrune: Diversity-based Visual Token Pruning for Large
Multimodal Models").

Paper: token pruning as a Max-Min Diversity Problem: among the image tokens entering the LLM (the
projected features), keep the subset whose smallest pairwise cosine distance (1 - cosine
similarity) is largest, solved greedily: the first token is the one farthest from its nearest
neighbour; then repeatedly add the token whose distance to its nearest selected token is largest,
until the budget's count. No attention, no text: the selection depends on the image alone.
Here: the same greedy rule on `EncoderView.features` (the projected features the decoder
receives, as in the paper), in float32, per sample. Ties go to the lower token index (argmax's
first maximum). A selected token is never picked again (a public implementation leaves selected
tokens in the argmax, which can repeat a token when the rest are exact duplicates of chosen ones;
here the count is always exactly k). Kept tokens keep their features and their slots; nothing is
merged. Budget: `encoder_count` (round(b N), or the largest count whose FLOPs fit); without a
budget it keeps round(0.1 N), the ratio a public implementation defaults to.
Reconstructed from the paper's abstract and method summary and a public implementation's code,
not from the paper in full.
"""
from __future__ import annotations

import torch

from ..engine.policy import EncoderView
from .base import ModelInfo, check_budget_kind, register
from .encoder import EncoderPolicy, encoder_count, encoder_plan

DEFAULT_SHARE = 0.1


def cosine_distance(x: torch.Tensor) -> torch.Tensor:
    """(B, N, N) 1 - cosine similarity between the rows of each (N, d) sample of x (B, N, d)."""
    xn = torch.nn.functional.normalize(x.float(), dim=-1)
    return 1.0 - xn @ xn.transpose(1, 2)


def max_min_select(features: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N) bool: k tokens per sample chosen greedily for the largest minimum cosine distance."""
    B, N, _ = features.shape
    if not 1 <= k <= N:
        raise ValueError(f"DivPrune keeps 1..{N} tokens, got {k}")
    dist = cosine_distance(features)
    eye = torch.eye(N, dtype=torch.bool, device=features.device)
    # first: the token whose nearest other token is farthest
    nearest = dist.masked_fill(eye, float("inf")).amin(1) if N > 1 else torch.zeros(B, 1, device=dist.device)
    chosen = torch.zeros(B, N, dtype=torch.bool, device=features.device)
    first = nearest.argmax(1)
    chosen[torch.arange(B), first] = True
    to_set = dist[torch.arange(B), first]  # (B, N) distance of every token to its nearest chosen one
    for _ in range(k - 1):
        nxt = to_set.masked_fill(chosen, float("-inf")).argmax(1)
        chosen[torch.arange(B), nxt] = True
        to_set = torch.minimum(to_set, dist[torch.arange(B), nxt])
    return chosen


class DivPrunePolicy(EncoderPolicy):
    def reduce(self, view: EncoderView, k: int | None):
        return view.features, max_min_select(view.features, k)


@register("divprune")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep") -> DivPrunePolicy:
    """DivPrune keeping round(budget N) tokens (default round(0.1 N))."""
    if budget is None:
        check_budget_kind(kind)
        count = max(1, round(info.n_vision * DEFAULT_SHARE))
    else:
        count = encoder_count(info, budget, kind)
    return DivPrunePolicy(count, info.n_vision, encoder_plan(info, count))
