"""VisionZip (Yang et al. 2024, "VisionZip: Longer is Better but Not Necessary", arXiv 2412.04467).

Paper / official code: in the vision tower's feature layer (CLIP layer -2 for LLaVA-1.5), keep the
*dominant* tokens, the patches receiving the most CLS attention (summed over heads); the other
patches are merged into a few *contextual* tokens: their keys (mean over heads, L2-normalised) are
split into evenly spaced targets (step = max(1, M // c) over the M remaining tokens in raster
order) and the rest; each of the rest goes to its most similar target (cosine, argmax); each
target's group is averaged. Settings 54+10, 108+20, 162+30 of 576 (dominant:contextual = 5.4:1).

Here (choices where the setting differs or the paper is silent):
- The merge acts on the projected features `EncoderView.features` (what the decoder receives), not
  on the vision hidden states before the projector as in the official code: the engine only lets a
  policy replace the projected features. The LLaVA projector is a 2-layer MLP, so averaging after
  it is not identical to averaging before it (documented deviation).
- The official code also keeps the CLS token among the dominant ones; the HF LLaVA image tokens are
  patches only ("default" feature strategy), so all dominant tokens here are patches.
- CLS attention is `EncoderView.cls_attention()` (mean over heads, softmax over the patches only:
  the CLS key is left out, which rescales each head's row; rankings can differ marginally from a
  softmax that includes it).
- `merge="mean"` (default): a contextual token is the plain mean of its target and the tokens
  assigned to it (the paper's "average"). `merge="target_plus_mean"`: target + mean of the assigned
  tokens (a variant seen in public copies of the official code). A target with nothing assigned
  keeps its feature unchanged.
- The merged contextual feature is written into the target token's slot; kept tokens keep their
  original positions (engine default).
- Budget: keep budget b keeps round(b N) tokens, split by the 54:10 ratio (contextual =
  round(total * 10/64), dominant = the rest): 64/128/192 of 576 give exactly 54+10, 108+20,
  162+30. FLOPs budgets take the largest count whose decoder FLOPs fit. Without a budget: 64 of
  576, i.e. the paper's smallest setting, scaled to N (round(N * 64/576)).
"""
from __future__ import annotations

import torch

from .. import scores as S
from ..engine.policy import EncoderView
from ..plan import Plan
from .base import ModelInfo, check_budget_kind, check_choice, check_int, option_error, register
from .encoder import EncoderPolicy, encoder_count, encoder_plan, head_mean_keys

MERGE_MODES = ("mean", "target_plus_mean")


# ---------------------------------------------------------------------- VisionZip algorithm
def split_counts(total: int, dominant: int = 54, contextual: int = 10) -> tuple[int, int]:
    """(dominant, contextual) for `total` kept tokens at the ratio dominant:contextual."""
    if total < 1:
        raise ValueError(f"VisionZip must keep at least one token, got {total}")
    check_int("visionzip", "dominant", dominant, lo=0), check_int("visionzip", "contextual", contextual, lo=0)
    if dominant + contextual == 0:
        raise option_error("visionzip", "dominant", dominant, "dominant + contextual >= 1 (contextual is 0)")
    c = round(total * contextual / (dominant + contextual))
    c = min(c, total - 1) if dominant > 0 else total
    return total - c, c


def dominant_mask(cls_attention: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N) bool: the k patches with the highest CLS attention (ties: lower index first)."""
    B, N = cls_attention.shape
    valid = torch.ones(B, N, dtype=torch.bool, device=cls_attention.device)
    return S.topk_mask(cls_attention, valid,
                       torch.full((B,), k, dtype=torch.long, device=cls_attention.device))


def contextual_merge(features: torch.Tensor, metric: torch.Tensor, remaining: torch.Tensor, n_contextual: int,
                     merge: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the `remaining` tokens into `n_contextual` evenly spaced targets among them.

    features (B, N, d); metric (B, N, dm) (keys); remaining (B, N) bool with the same count M per
    sample. Each non-target remaining token joins its most cosine-similar target; the target slot
    receives the group's merged feature. Returns (features', targets (B, N) bool).
    """
    check_choice("visionzip", "merge", merge, MERGE_MODES)
    B, N, d = features.shape
    M = remaining.sum(1)
    if bool((M != M[0]).any()):
        raise ValueError("every sample must have the same number of remaining tokens")
    M = int(M[0])
    targets = torch.zeros_like(remaining)
    if n_contextual <= 0 or M == 0:
        return features, targets
    if n_contextual > M:
        raise ValueError(f"{n_contextual} contextual tokens requested from {M} remaining tokens")
    ar = torch.arange(N, device=features.device)
    # remaining positions in raster order
    rem = torch.sort(torch.where(remaining, ar, ar + N), dim=1).indices[:, :M]
    step = max(1, M // n_contextual)
    t_local = torch.arange(0, M, step, device=features.device)[:n_contextual]
    is_t = torch.zeros(M, dtype=torch.bool, device=features.device)
    is_t[t_local] = True
    t_pos, o_pos = rem[:, is_t], rem[:, ~is_t]                    # (B, c), (B, M - c)
    x = features.float()
    mn = torch.nn.functional.normalize(metric.float(), dim=-1)

    def take(t, idx):
        return torch.gather(t, 1, idx[..., None].expand(-1, -1, t.shape[-1]))

    sim = take(mn, o_pos) @ take(mn, t_pos).transpose(1, 2)       # (B, M - c, c)
    assign = torch.zeros_like(sim).scatter_(2, sim.argmax(2, keepdim=True), 1.0)
    counts = assign.sum(1)[..., None]                             # (B, c, 1)
    summed = assign.transpose(1, 2) @ take(x, o_pos)              # (B, c, d)
    tx = take(x, t_pos)
    if merge == "mean":
        merged = (tx + summed) / (1.0 + counts)
    else:
        merged = tx + summed / counts.clamp_min(1.0)
    merged = torch.where(counts > 0, merged, tx)
    out = features.clone()
    out.scatter_(1, t_pos[..., None].expand(-1, -1, d), merged.to(features.dtype))
    targets.scatter_(1, t_pos, True)
    return out, targets


def visionzip(features: torch.Tensor, cls_attention: torch.Tensor, metric: torch.Tensor, n_dominant: int,
              n_contextual: int, merge: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """The whole VisionZip step: (features', keep (B, N)) with n_dominant + n_contextual kept per sample."""
    N = features.shape[1]
    if n_dominant + n_contextual > N:
        raise ValueError(f"VisionZip keeps {n_dominant}+{n_contextual} tokens but only {N} exist")
    dom = dominant_mask(cls_attention, n_dominant)
    feats, targets = contextual_merge(features, metric, ~dom, n_contextual, merge)
    return feats, dom | targets


# ---------------------------------------------------------------------- policy and factory
class VisionZipPolicy(EncoderPolicy):
    def __init__(self, count: int, n_plan: int, dominant: int = 54, contextual: int = 10, merge: str = "mean",
                 plan: Plan | None = None):
        check_choice("visionzip", "merge", merge, MERGE_MODES)
        split_counts(max(1, count), dominant, contextual)  # validates the ratio
        super().__init__(count, n_plan, plan)
        self.dominant, self.contextual, self.merge = dominant, contextual, merge

    def reduce(self, view: EncoderView, k: int | None):
        attn = view.cls_attention()  # raises UnsupportedInput without a CLS token
        n_dom, n_ctx = split_counts(k, self.dominant, self.contextual)
        return visionzip(view.features, attn, head_mean_keys(view), n_dom, n_ctx, self.merge)


DEFAULT_TOTAL, PAPER_N = 64, 576


@register("visionzip")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", dominant: int = 54,
         contextual: int = 10, merge: str = "mean") -> VisionZipPolicy:
    """VisionZip keeping round(budget N) tokens (default: 64 of 576, scaled to N) at dominant:contextual."""
    if budget is None:
        check_budget_kind(kind)
        count = max(1, round(info.n_vision * DEFAULT_TOTAL / PAPER_N))
    else:
        count = encoder_count(info, budget, kind)
    return VisionZipPolicy(count, info.n_vision, dominant, contextual, merge, encoder_plan(info, count))
