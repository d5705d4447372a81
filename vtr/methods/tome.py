"""ToMe (Bolya et al., ICLR 2023, "Token Merging: Your ViT But Faster"), adapted to the encoder output.

Paper: inside every ViT block (between attention and MLP), bipartite soft matching: split the
tokens alternately into sets A and B, connect each A token to its most similar B token (cosine of
the keys averaged over heads), keep the r most similar edges and merge those A tokens into their
B partners by a size-weighted average; token sizes are tracked (and used by proportional
attention in later blocks). r tokens are removed per block.

Here: merging inside the vision tower would need hooks in every tower layer; the documented
simplification runs bipartite soft matching at the feature layer's output only, repeated until the
budget count is reached (r = min(current - target, current // 2) per round, the most a bipartite
round can merge). The metric is the feature layer's keys (mean over heads, cosine); within the
repeated rounds a merged token's key is the size-weighted average of its members' keys (there is
no later layer to recompute it). Features are the projected features (`EncoderView.features`);
the merged feature goes to the B token's slot (so the merged token takes the B token's original
position); merged-away A tokens are dropped. A/B alternation is over the surviving tokens in
raster order at every round. Proportional attention has nothing to act on (no later vision layer)
and is left out. Ties: the edge order is a stable sort (lower A index first); argmax takes the
first B.
Budget: keep budget b keeps round(b N) tokens (FLOPs budgets: the largest fitting count). Without a
budget: one full bipartite round, keeping N - N // 2 tokens (ToMe's r per layer has no counterpart
at a single site).
"""
from __future__ import annotations

import torch

from ..engine.policy import EncoderView
from ..plan import Plan
from .base import ModelInfo, check_budget_kind, register
from .encoder import EncoderPolicy, encoder_count, encoder_plan, head_mean_keys


# ---------------------------------------------------------------------- pure algorithm
def bipartite_round(x: torch.Tensor, metric: torch.Tensor, size: torch.Tensor, r: int):
    """One round of bipartite soft matching on (B, n, .) tensors.

    A = even positions, B = odd positions. Each A token's edge goes to its most cosine-similar B
    token; the r A tokens with the strongest edges are merged (size-weighted) into their B tokens.
    Returns (x', metric', size', survivors (B, n - r) long: positions kept, ascending).
    """
    Bsz, n, d = x.shape
    if not 0 <= r <= n // 2:
        raise ValueError(f"a bipartite round can merge 0..{n // 2} of {n} tokens, got r={r}")
    if r == 0:
        return x, metric, size, torch.arange(n, device=x.device).expand(Bsz, n)
    dev = x.device
    a_pos, b_pos = torch.arange(0, n, 2, device=dev), torch.arange(1, n, 2, device=dev)
    mn = torch.nn.functional.normalize(metric.float(), dim=-1)
    scores = mn[:, a_pos] @ mn[:, b_pos].transpose(1, 2)               # (B, na, nb)
    node_max, node_idx = scores.max(dim=-1)
    edge_order = torch.sort(node_max, dim=1, descending=True, stable=True).indices
    src, unm = edge_order[:, :r], edge_order[:, r:]                       # A-local indices
    dst = torch.gather(node_idx, 1, src)                                  # B-local indices

    def merge(t):
        ta, tb = t[:, a_pos].float(), t[:, b_pos].float()
        sa, sb = size[:, a_pos, None], size[:, b_pos, None]
        num = (tb * sb).scatter_add(1, dst[..., None].expand(-1, -1, t.shape[-1]),
                                    torch.gather(ta * sa, 1, src[..., None].expand(-1, -1, t.shape[-1])))
        return num

    sb_new = size[:, b_pos].scatter_add(1, dst, torch.gather(size[:, a_pos], 1, src))
    touched = sb_new != size[:, b_pos]
    xb = torch.where(touched[..., None], merge(x) / sb_new[..., None], x[:, b_pos].float()).to(x.dtype)
    mb = torch.where(touched[..., None], merge(metric) / sb_new[..., None], metric[:, b_pos].float())
    # survivors: unmerged A tokens and every B token, in ascending position
    a_keep = a_pos[unm]                                                   # (B, na - r) positions
    surv = torch.sort(torch.cat([a_keep, b_pos.expand(Bsz, -1)], 1), dim=1).indices
    pos = torch.gather(torch.cat([a_keep, b_pos.expand(Bsz, -1)], 1), 1, surv)
    x_new, m_new, s_new = x.clone(), metric.float().clone(), size.clone()
    x_new[:, b_pos], m_new[:, b_pos], s_new[:, b_pos] = xb, mb, sb_new

    def take(t):
        return torch.gather(t, 1, pos.view(Bsz, -1, *([1] * (t.ndim - 2))).expand(-1, -1, *t.shape[2:]))

    return take(x_new), take(m_new), take(s_new), pos


def tome_merge(features: torch.Tensor, metric: torch.Tensor, target: int):
    """Repeated bipartite soft matching down to `target` tokens per sample.

    Returns (features' (B, N, d) with each merged group in its surviving slot, keep (B, N) bool,
    sizes (B, N): tokens merged into each kept slot, 0 for dropped slots).
    """
    Bsz, N, d = features.shape
    if not 1 <= target <= N:
        raise ValueError(f"ToMe target must lie in 1..{N}, got {target}")
    slots = torch.arange(N, device=features.device).expand(Bsz, N)
    x, m = features, metric.float()
    size = torch.ones(Bsz, N, device=features.device)
    while x.shape[1] > target:
        n = x.shape[1]
        r = min(n - target, n // 2)
        x, m, size, pos = bipartite_round(x, m, size, r)
        slots = torch.gather(slots, 1, pos)
    out = features.clone()
    out.scatter_(1, slots[..., None].expand(-1, -1, d), x.to(features.dtype))
    keep = torch.zeros(Bsz, N, dtype=torch.bool, device=features.device).scatter_(1, slots, True)
    sizes = torch.zeros(Bsz, N, device=features.device).scatter_(1, slots, size)
    return out, keep, sizes


# ---------------------------------------------------------------------- policy and factory
class ToMePolicy(EncoderPolicy):
    """Records `last_sizes` (B, N): how many original tokens each kept slot holds."""

    def __init__(self, count: int | None, n_plan: int, plan: Plan | None = None):
        super().__init__(count, n_plan, plan)
        self.last_sizes: torch.Tensor | None = None

    def reduce(self, view: EncoderView, k: int | None):
        n = view.features.shape[1]
        target = n - n // 2 if k is None else k
        feats, keep, self.last_sizes = tome_merge(view.features, head_mean_keys(view), target)
        return feats, keep


@register("tome")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep") -> ToMePolicy:
    """ToMe at the encoder output: round(budget N) tokens (default: one bipartite round, N - N // 2)."""
    if budget is None:
        check_budget_kind(kind)
        return ToMePolicy(None, info.n_vision)
    count = encoder_count(info, budget, kind)
    return ToMePolicy(count, info.n_vision, encoder_plan(info, count))
