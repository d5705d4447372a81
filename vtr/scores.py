"""Importance scores of vision tokens: pure tensor functions, no model code.

Decoder side: the attention that chosen query rows (the last token, or the text tokens) pay to
each vision token, computed from one layer's own query/key projections for those rows only. So
SDPA / FlashAttention stay on: nothing asks the model for attention weights.

Vision-tower side: attention of CLS onto the patches (from the last layer's q/k), and cosine
similarity of each patch's output feature to the CLS feature.
"""
from __future__ import annotations

import torch

QUERY_KINDS = ("last", "text_mean")
# Where a decoder-side score comes from, for the tokens entering layer l: "previous" = the attention
# computed inside layer l-1 (its q/k on its own input: what `output_attentions` returns for layer
# l-1, FastV's rule), "current" = layer l's q/k on layer l's input (PyramidDrop's light-weight
# attention). Both are computed for the query rows only, so SDPA stays on.
SCORE_SOURCES = ("previous", "current")
HEAD_REDUCTIONS = ("mean", "max")


def attention_probs(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) under a boolean mask.

    q: (B, H, Q, D) query rows; k: (B, Hk, T, D) keys (Hk divides H: grouped-query attention);
    allowed: (B, Q, T) True where the query may attend. Returns (B, H, Q, T).
    """
    if k.shape[1] != q.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    logits = torch.einsum("bhqd,bhtd->bhqt", q.float(), k.float()) * scale
    logits = logits.masked_fill(~allowed[:, None], float("-inf"))
    return torch.softmax(logits, dim=-1).nan_to_num(0.0)


def reduce_heads(probs: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """(B, H, Q, T) -> (B, Q, T)."""
    if how == "mean":
        return probs.mean(1)
    if how == "max":
        return probs.amax(1)
    raise ValueError(f"unknown head reduction {how!r}; expected one of {HEAD_REDUCTIONS}")


def reduce_queries(scores: torch.Tensor, query_valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid query rows: (B, Q, T), (B, Q) -> (B, T)."""
    w = query_valid.float()
    return (scores * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)


def topk_mask(scores: torch.Tensor, valid: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the k[b] highest-scoring valid entries of each row (ties: lower index first).

    scores, valid: (B, N); k: (B,) integers with 0 <= k[b] <= valid[b].sum().
    """
    n_valid = valid.sum(1)
    if bool((k > n_valid).any()) or bool((k < 0).any()):
        b = int(((k > n_valid) | (k < 0)).nonzero()[0])
        raise ValueError(f"sample {b}: keep {int(k[b])} is outside 0..{int(n_valid[b])} available vision "
                         "tokens")
    s = scores.float().masked_fill(~valid, float("-inf"))
    # stable descending order so equal scores keep their original order (deterministic)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order))
    return (rank < k[:, None]) & valid


def cls_attention(q_cls: torch.Tensor, k_patches: torch.Tensor, scale: float,
                  heads: str = "mean") -> torch.Tensor:
    """Attention of CLS onto patches in a vision layer. q_cls: (B, H, D); k_patches: (B, H, N, D).

    Softmax over CLS and patches together is what the layer computes; here the CLS key is left
    out (it only rescales every patch equally, so rankings are unchanged). Returns (B, N).
    """
    logits = torch.einsum("bhd,bhnd->bhn", q_cls.float(), k_patches.float()) * scale
    return reduce_heads(torch.softmax(logits, -1)[:, :, None], heads)[:, 0]


def cls_similarity(cls: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each patch feature to the CLS feature: (B, D), (B, N, D) -> (B, N)."""
    return torch.nn.functional.cosine_similarity(patches.float(), cls.float()[:, None], dim=-1)
