"""DART (Wen et al. 2025, "Stop Looking for Important Tokens in Multimodal Language Models:
Duplication Matters More").

Paper: instead of ranking tokens by importance (attention), remove duplicates. After layer K of the
LLM (K = 2 on LLaVA-1.5), pick a few *pivot* tokens, those whose keys in layer K-1 have the
largest norm ("K-norm"), among the image tokens and among the text tokens after the image; then
for each pivot keep the tokens least similar (cosine of the hidden states entering layer K) to it,
each pivot taking its share of the budget from the tokens not yet taken. The image pivots are kept
too; the text pivots only guide the choice (text is never pruned). Main setting: 128 of 576 image
tokens kept.
Here (a decoder-side policy on FastV's schedule: every token up to layer K, one count from K on,
`fastv.plan_for`; K = 2 of 32 scaled to depth, R = 7/9, i.e. 128 of 576, without a budget):
- Pivots: `pivot_image` (default 4) image tokens and `pivot_text` (default 4) instruction tokens
  (`LayerView.text_query`) with the largest L1 norm of their keys in layer K-1, heads concatenated,
  rotary applied (`LayerView.keys("previous")`), as a public implementation reads the paper's
  K-norm; ties go to the lower position. A sample with fewer tokens gets fewer pivots; when no
  pivot is left at all, the image token of largest key norm is the one pivot.
- Quotas: exactly k tokens are kept: the image pivots (all k when k <= their number, the highest
  norms first), then the k - p remaining are shared out over the pivots in order (image pivots by
  norm, then text pivots by norm), floor((k - p) / n) each and one more for the first
  (k - p) mod n. A public implementation gives each pivot floor(k / n) on top of the image
  pivots (a few more or fewer than k) and walks the pivots in no fixed order.
- Each pivot in turn takes its quota of the remaining candidates with the lowest cosine
  similarity to it (ties: lower original index), computed on the raw hidden states entering
  layer K (`LayerView.hidden`); the public implementation applies the decoder's final RMSNorm
  first, which reweights channels (documented deviation: the view holds no norm weights).
Reconstructed from the paper's abstract and method summary and a public implementation's code,
not from the paper in full.
"""
from __future__ import annotations

import torch

from ..engine.policy import LayerView
from ..plan import Plan, PlanError
from . import fastv
from .base import ModelInfo, check_bool, check_int, option_error, register
from .selection import SelectionPolicy, present_by_index

DEFAULT_R = 7 / 9  # 128 of 576 kept


def quotas(total: int, n: int) -> list[int]:
    """`total` shared out over n pivots: floor(total / n) each, one more for the first total mod n."""
    return [total // n + (1 if j < total % n else 0) for j in range(n)]


def by_norm(norms: torch.Tensor, pos: torch.Tensor, m: int) -> torch.Tensor:
    """The m positions of `pos` (in increasing order of preference on ties) with the largest norms."""
    order = torch.sort(norms[pos], descending=True, stable=True).indices
    return pos[order[:m]]


def dart_select(hidden: torch.Tensor, key_norm: torch.Tensor, vision: torch.Tensor, text: torch.Tensor,
                k: int, pivot_image: int = 4, pivot_text: int = 4) -> torch.Tensor:
    """One sample's DART choice: the k kept positions (sorted).

    hidden (T, d) states entering layer K; key_norm (T,) L1 norm of layer K-1's keys; vision (V,)
    the vision positions in order of original index; text (S,) the instruction positions."""
    img_piv = by_norm(key_norm, vision, min(pivot_image, len(vision), k))
    txt_piv = by_norm(key_norm, text, min(pivot_text, len(text)))
    if len(img_piv) + len(txt_piv) == 0 and k > 0:  # nothing to steer by: the largest key norm leads
        img_piv = by_norm(key_norm, vision, 1)
    kept = img_piv.tolist()
    pivots = kept + txt_piv.tolist()
    taken = set(kept)
    cands = [int(p) for p in vision if int(p) not in taken]
    h = torch.nn.functional.normalize(hidden.float(), dim=-1)
    for pivot, q in zip(pivots, quotas(k - len(kept), len(pivots)) if pivots else []):
        q = min(q, len(cands))
        if q == 0:
            continue
        sim = h[cands] @ h[pivot]
        least = torch.sort(sim, stable=True).indices[:q].tolist()
        picked = {cands[i] for i in least}
        kept.extend(sorted(picked))
        cands = [p for p in cands if p not in picked]
    return torch.tensor(sorted(kept), dtype=torch.long)


class DARTPolicy(SelectionPolicy):
    def __init__(self, plan: Plan, pivot_image: int = 4, pivot_text: int = 4, scale_to_input: bool = False):
        super().__init__(plan, scale_to_input=scale_to_input)
        self.pivot_image, self.pivot_text = pivot_image, pivot_text

    def select(self, layer: int, view: LayerView, k: torch.Tensor) -> torch.Tensor:
        norms = view.keys("previous").float().abs().sum((1, 3))  # (B, T): L1 over heads and channels
        keep = torch.zeros_like(view.vision)
        for b in range(view.vision.shape[0]):
            text = (view.text_query[b] & view.valid[b]).nonzero().flatten()
            pos = dart_select(view.hidden[b], norms[b], present_by_index(view, b), text, int(k[b]),
                              self.pivot_image, self.pivot_text)
            keep[b, pos.to(keep.device)] = True
        return keep


@register("dart")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
         R: float = DEFAULT_R, pivot_image: int = 4, pivot_text: int = 4, scale_to_input: bool = False):
    pivot_image = check_int("dart", "pivot_image", pivot_image, lo=0)
    pivot_text = check_int("dart", "pivot_text", pivot_text, lo=0)
    if pivot_image + pivot_text == 0:
        raise option_error("dart", "pivot_image", pivot_image,
                           "pivot_image + pivot_text >= 1 (pivot_text is 0)")
    scale_to_input = check_bool("dart", "scale_to_input", scale_to_input)
    try:
        plan = fastv.plan_for(info, budget, kind, K, R, method="dart")
    except PlanError as e:
        raise PlanError(f"dart: {e} (it shares FastV's schedule)") from e
    return DARTPolicy(plan, pivot_image, pivot_text, scale_to_input)
