"""LLaVA-PruMerge and PruMerge+ (Shang et al. 2024, "LLaVA-PruMerge: Adaptive Token Reduction for
Efficient Large Multimodal Models", arXiv 2403.15388).

Paper: (1) adaptive selection: the CLS attention onto the patches of the penultimate CLIP layer has
a few outliers; keep the patches whose CLS attention is above Q3 + 1.5 IQR (interquartile range
rule), about 5.5% of 576 on LLaVA-1.5. (2) merging ("token supplement"): for each kept token find
its k nearest neighbours by key similarity and update it with their features, weighted by their
CLS attention. PruMerge+ adds spatially uniform samples among the other tokens so that about 25%
are kept (the kept outliers are about a quarter of the total).

Public code details (and what we do):
- Neighbours: the official code takes k = 32 nearest by cosine of the layer's k_proj output (heads
  concatenated) among *all* other tokens (kept and pruned), and the update is x_i + sum_j a_j x_j
  (an attention-weighted sum added to the token, not normalised). The paper text describes a
  weighted average with the pruned tokens. Default here: the paper/brief reading
  (`neighbours="pruned"`, `update="average"`: x_i' = (a_i x_i + sum_j a_j x_j) / (a_i + sum_j a_j)
  over the k nearest pruned tokens j); `neighbours="all", update="residual_sum"` reproduces the
  official code's rule. k_neighbours = 32 (official), capped at the candidates available. A kept
  token with no candidate keeps its feature unchanged.
- The official code appends one extra token (the attention-weighted sum of all pruned tokens);
  the engine only keeps or replaces token slots, so it is left out.
- The IQR rule is applied per sample (the official code pools the whole batch); quartiles by
  linear interpolation (numpy's default, as the official code). At least `min_keep` = 1 kept.
- PruMerge+ samples (no budget, official rule): with r = outlier fraction, step = int(1/r),
  samples at arange(int(step/6), N, max(1, int(step/3))) that are not already kept.
- Merging uses the projected features (`EncoderView.features`); the official code merges the
  CLIP features before the projector (which is an MLP: not identical). CLS attention is
  `EncoderView.cls_attention()` (multi-head, mean over heads; the official code uses one
  full-width head from q/k_proj).
- Budget: the adaptive IQR count is the no-budget mode (`budget=None`, per-sample counts).
  With a budget, the IQR threshold is replaced by top-k to the budget count round(b N) (or the
  FLOPs-fitting count): PruMerge keeps the top-k CLS-attention tokens; PruMerge+ keeps the top
  round(k * outlier_share) (outlier_share = 0.25, at least 1) and fills the rest with evenly spaced
  samples (raster order) among the other tokens. Then the merge step runs as above.
"""
from __future__ import annotations

import torch

from .. import scores as S
from ..engine.policy import EncoderView
from ..plan import Plan
from .base import ModelInfo, check_budget_kind, check_choice, check_int, check_number, register
from .encoder import EncoderPolicy, encoder_count, encoder_plan, flat_keys

NEIGHBOURS = ("pruned", "all")
UPDATES = ("average", "residual_sum")


# ---------------------------------------------------------------------- pure algorithm
def iqr_outliers(scores: torch.Tensor, whisker: float = 1.5) -> torch.Tensor:
    """(B, N) bool: entries above Q3 + whisker * IQR of their own row."""
    q = torch.quantile(scores.float(), torch.tensor([0.25, 0.75], device=scores.device), dim=1)
    q1, q3 = q[0], q[1]
    return scores.float() > (q3 + whisker * (q3 - q1))[:, None]


def top_counts(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: the counts[b] highest scores of each row (ties: lower index first)."""
    valid = torch.ones_like(scores, dtype=torch.bool)
    return S.topk_mask(scores, valid, counts.to(torch.long))


def evenly_spaced(free: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: m[b] tokens evenly spaced (raster order) among the free[b] ones, centred in
    their intervals: the free tokens of rank floor((i + 0.5) M / m), i < m, M = free count."""
    out = torch.zeros_like(free)
    for b in range(free.shape[0]):
        idx = free[b].nonzero().flatten()
        M, mb = len(idx), int(m[b])
        if mb > M:
            raise ValueError(f"sample {b}: {mb} samples requested from {M} free tokens")
        if mb > 0:
            ranks = ((torch.arange(mb, dtype=torch.float64) + 0.5) * M / mb).floor().long()
            out[b, idx[ranks.to(idx.device)]] = True
    return out


def official_plus_samples(kept: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: PruMerge+'s spatial samples for the adaptive mode (official rule), not already kept.

    r = kept fraction, step = int(1 / r), samples at arange(int(step / 6), N, max(1, int(step / 3))).
    """
    B, N = kept.shape
    out = torch.zeros_like(kept)
    for b in range(B):
        n = int(kept[b].sum())
        if n == 0:
            continue
        step = int(N / n)
        idx = torch.arange(int(step / 6), N, max(1, int(step / 3)), device=kept.device)
        out[b, idx] = True
    return out & ~kept


def merge_neighbours(features: torch.Tensor, metric: torch.Tensor, weights: torch.Tensor, kept: torch.Tensor,
                     k: int = 32, neighbours: str = "pruned", update: str = "average") -> torch.Tensor:
    """Update each kept token with its k most key-similar candidates, weighted by `weights` (CLS attention).

    features (B, N, d); metric (B, N, dm); weights (B, N) >= 0; kept (B, N) bool. Candidates: the
    pruned tokens (`neighbours="pruned"`) or every other token (`"all"`). `update="average"`:
    (w_i x_i + sum_j w_j x_j) / (w_i + sum_j w_j); `"residual_sum"`: x_i + sum_j w_j x_j.
    Unkept rows and kept rows without candidates are returned unchanged.
    """
    check_choice("prumerge", "neighbours", neighbours, NEIGHBOURS)
    check_choice("prumerge", "update", update, UPDATES)
    check_int("prumerge", "k_neighbours", k, lo=1)
    B, N, d = features.shape
    mn = torch.nn.functional.normalize(metric.float(), dim=-1)
    sim = mn @ mn.transpose(1, 2)                                           # (B, N, N)
    eye = torch.eye(N, dtype=torch.bool, device=features.device)[None]
    cand = (~kept[:, None, :] if neighbours == "pruned" else torch.ones_like(eye)) & ~eye
    cand = cand & kept[:, :, None]                                          # rows: kept tokens only
    sim = sim.masked_fill(~cand, float("-inf"))
    kk = min(k, N - 1)
    order = torch.sort(sim, dim=2, descending=True, stable=True).indices[..., :kk]
    chosen = torch.zeros_like(cand).scatter_(2, order, True) & cand           # (B, N, N)
    w = weights.float()
    W = chosen.float() * w[:, None, :]
    x = features.float()
    nb = W @ x                                                              # (B, N, d)
    if update == "average":
        merged = (w[..., None] * x + nb) / (w[..., None] + W.sum(2, keepdim=True)).clamp_min(1e-12)
    else:
        merged = x + nb
    has = chosen.any(2, keepdim=True)
    return torch.where(has, merged.to(features.dtype), features)


def prumerge(features: torch.Tensor, cls_attention: torch.Tensor, metric: torch.Tensor,
             count: int | None = None, plus: bool = False, outlier_share: float = 0.25,
             k_neighbours: int = 32, neighbours: str = "pruned", update: str = "average", min_keep: int = 1,
             whisker: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """PruMerge(+): (features', keep (B, N)). count None: adaptive IQR mode (per-sample counts)."""
    B, N = cls_attention.shape
    dev = cls_attention.device
    if count is None:
        n_out = iqr_outliers(cls_attention, whisker).sum(1).clamp(min=min(min_keep, N))
        kept = top_counts(cls_attention, n_out)
        if plus:
            kept = kept | official_plus_samples(kept)
    else:
        if not 1 <= count <= N:
            raise ValueError(f"PruMerge count must lie in 1..{N}, got {count}")
        if plus:
            n_out = min(count, max(1, round(count * outlier_share)))
            kept = top_counts(cls_attention, torch.full((B,), n_out, device=dev))
            kept = kept | evenly_spaced(~kept, torch.full((B,), count - n_out, device=dev))
        else:
            kept = top_counts(cls_attention, torch.full((B,), count, device=dev))
    feats = merge_neighbours(features, metric, cls_attention, kept, k_neighbours, neighbours, update)
    return feats, kept


# ---------------------------------------------------------------------- policy and factories
class PruMergePolicy(EncoderPolicy):
    def __init__(self, count: int | None, n_plan: int, plus: bool = False, outlier_share: float = 0.25,
                 k_neighbours: int = 32, neighbours: str = "pruned", update: str = "average",
                 min_keep: int = 1, plan: Plan | None = None):
        name = "prumerge_plus" if plus else "prumerge"
        check_choice(name, "neighbours", neighbours, NEIGHBOURS)
        check_choice(name, "update", update, UPDATES)
        check_number(name, "outlier_share", outlier_share, 0.0, 1.0, lo_open=True)
        check_int(name, "k_neighbours", k_neighbours, lo=1)
        check_int(name, "min_keep", min_keep, lo=1)
        super().__init__(count, n_plan, plan)
        self.plus, self.outlier_share, self.k_neighbours = plus, outlier_share, k_neighbours
        self.neighbours, self.update, self.min_keep = neighbours, update, min_keep

    def reduce(self, view: EncoderView, k: int | None):
        attn = view.cls_attention()  # raises UnsupportedInput without a CLS token
        return prumerge(view.features, attn, flat_keys(view), k, self.plus, self.outlier_share,
                        self.k_neighbours, self.neighbours, self.update, self.min_keep)


def _make(info: ModelInfo, budget, kind, plus, **hp) -> PruMergePolicy:
    if budget is None:
        check_budget_kind(kind)
        return PruMergePolicy(None, info.n_vision, plus, **hp)
    count = encoder_count(info, budget, kind)
    return PruMergePolicy(count, info.n_vision, plus, plan=encoder_plan(info, count), **hp)


@register("prumerge")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", k_neighbours: int = 32,
         neighbours: str = "pruned", update: str = "average", min_keep: int = 1) -> PruMergePolicy:
    """PruMerge: adaptive IQR count without a budget, top-k to the budget count with one."""
    return _make(info, budget, kind, False, k_neighbours=k_neighbours, neighbours=neighbours, update=update,
                 min_keep=min_keep)


@register("prumerge_plus")
def make_plus(info: ModelInfo, budget: float | None = None, kind: str = "keep", outlier_share: float = 0.25,
              k_neighbours: int = 32, neighbours: str = "pruned", update: str = "average",
              min_keep: int = 1) -> PruMergePolicy:
    """PruMerge+: PruMerge's outliers plus spatially uniform samples (about 25% kept without a budget)."""
    return _make(info, budget, kind, True, outlier_share=outlier_share, k_neighbours=k_neighbours,
                 neighbours=neighbours, update=update, min_keep=min_keep)
