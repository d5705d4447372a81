"""SparseVLM (Zhang et al., 2024, "SparseVLM: Visual Token Sparsification for Efficient
Vision-Language Model Inference", v1 code: github.com/Gumpest/SparseVLMs).

Paper / code: vision tokens are sparsified at LLM layers 2, 6 and 15 (of 32). Text tokens
relevant to the image act as "raters": the rows of the text-to-vision relation whose relevance
is above the mean. Each vision token is scored by the raters' attention to it, averaged over
heads and raters, and the top ones are kept. The per-stage counts of the public code, for
LLaVA-1.5's 576 tokens, are 300/200/110 ("192 tokens" setting), 303/110/36 ("128") and 66/30/17
("64"), each capped at (present - 1). Pruned tokens can be "recycled": clustered and merged into
a few extra tokens.

Here:
* layers round(L x / 32) for x = 2, 6, 15, at least 1 and strictly increasing while depth allows
  (2/6/15 for L = 32, 1/2/3 for L = 4), or `layers=`. "Sparsify at layer l" is read as
  `keep[l]` = the stage count: the tokens are ranked on layer l's input with layer l's own q/k
  (`source="current"`, the default). The code ranks inside layer l with layer l's attention map
  and prunes layer l's output: the same scores, so the same tokens, applied one layer later
  (layer l itself still sees every token). `source="previous"` ranks the tokens entering layer l
  by layer l-1's map instead (FastV's reading of "the attention at the previous layer");
* raters, per sample and per stage: among the text tokens after the image (`view.text_query`),
  those whose attention mass on the present vision tokens (mean over heads) is strictly above the
  mean mass of those text rows (all of them if none is above, e.g. a single row; the last token
  if the sample has no text after the image). The code picks raters once, from the projected
  embeddings; we take the attention at each stage, which is also what the paper's text
  describes (relevance from the layer's attention);
* score = mean over raters of the head-mean attention; top-k per sample, ties to lower position;
* counts: `setting` 192 (default), 128 or 64 selects the paper's list, rescaled by n / 576 (or
  `counts=` for a custom triple in tokens of n); counts are capped by n and made non-increasing;
  the code's additional cap of (present - 1) is not applied (it only matters when a list entry
  exceeds the tokens present);
* at a budget: the counts are scaled by one factor s (count_i = round(s c_i), capped at n) and s
  is solved by bisection for the largest plan with `info.cost(plan, kind)` <= budget; budgets
  below the cost of keeping nothing from the first layer on are infeasible (PlanError);
* recycling (merging the pruned tokens into kept ones) is NOT implemented: the engine only
  removes tokens, and recycling would need it to rewrite kept hidden states. `recycle=True`
  is refused (`MethodOptionError`). The rank-based adaptive count of the paper is not used either
  (the public code uses the fixed lists above).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .. import scores as S
from ..engine.policy import LayerView
from ..plan import Plan, PlanError
from .base import ModelInfo, check_bool, check_budget, check_budget_kind, check_layers, option_error, register
from .selection import SelectionPolicy

PAPER_LAYERS = (2, 6, 15)
PAPER_DEPTH = 32
PAPER_N_VISION = 576
SETTINGS = {192: (300, 200, 110), 128: (303, 110, 36), 64: (66, 30, 17)}
_EPS = 1e-9


def default_layers(n_layers: int) -> tuple[int, ...]:
    out: list[int] = []
    for x in PAPER_LAYERS:
        layer = max(1, round(x * n_layers / PAPER_DEPTH))
        if out:
            layer = max(layer, out[-1] + 1)
        out.append(min(layer, n_layers - 1))
    return tuple(out)


def base_counts(n_vision: int, setting: int = 192,
                counts: Sequence[float] | None = None) -> tuple[float, ...]:
    """Unrounded per-stage counts for n_vision tokens (the paper's list times n / 576)."""
    if counts is not None:
        items = counts.split(",") if isinstance(counts, str) else \
            [counts] if isinstance(counts, (int, float)) else counts
        try:
            values = tuple(float(c) for c in items)
        except (TypeError, ValueError):
            values = ()
        if not values or any(not c >= 0 for c in values):
            raise option_error("sparsevlm", "counts", counts,
                               "token counts >= 0, one per layer (e.g. 300,200,110)")
        return values
    if isinstance(setting, bool) or setting not in SETTINGS:
        raise option_error("sparsevlm", "setting", setting, f"one of {', '.join(map(str, sorted(SETTINGS)))}")
    return tuple(c * n_vision / PAPER_N_VISION for c in SETTINGS[setting])


def plan_from_counts(n_layers: int, n_vision: int, layers: Sequence[int], counts: Sequence[float],
                     scale: float = 1.0) -> Plan:
    layers = check_layers("sparsevlm", "layers", layers, 0, n_layers - 1)
    if len(layers) != len(counts):
        raise PlanError(f"SparseVLM needs one count per layer: layers={layers}, counts={tuple(counts)}")
    keep, cur = [], n_vision
    for layer in range(n_layers):
        for b, c in zip(layers, counts):
            if b == layer:
                cur = min(cur, int(scale * c + 0.5))
        keep.append(cur)
    return Plan.from_counts(keep, n_vision, n_layers)


def plan_for(info: ModelInfo, budget: float | None = None, kind: str = "keep",
             layers: Sequence[int] | None = None, setting: int = 192, counts: Sequence[float] | None = None,
             iters: int = 60) -> Plan:
    if layers is None:
        layers = default_layers(info.n_layers)
    else:
        layers = check_layers("sparsevlm", "layers", layers, 0, info.n_layers - 1)
    base = base_counts(info.n_vision, setting, counts)

    def plan_at(s):
        return plan_from_counts(info.n_layers, info.n_vision, layers, base, s)

    if budget is None:
        return plan_at(1.0)
    check_budget(budget), check_budget_kind(kind)
    if info.cost(plan_at(0.0), kind) > budget + _EPS:
        raise PlanError(f"SparseVLM cannot meet budget {budget:.4g} ({kind}): keeping every token before "
                        f"layer {layers[0]} and none after costs {info.cost(plan_at(0.0), kind):.4g}")
    lo, hi = 0.0, 1.0
    while info.cost(plan_at(hi), kind) <= budget + _EPS:
        if plan_at(hi).keep == Plan.full(info.n_layers, info.n_vision).keep or hi > 1e9:
            return plan_at(hi)
        lo, hi = hi, 2 * hi
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if info.cost(plan_at(mid), kind) <= budget + _EPS else (lo, mid)
    return plan_at(lo)


def raters(view: LayerView, source: str = "current") -> torch.Tensor:
    """(B, T) bool: the text rows (of view.text_query) whose head-mean attention mass on the present
    vision tokens is strictly above the mean over those rows; all rows when none is above; the last
    token when a sample has no text row after the image."""
    probs, rows, row_valid = view.attention(view.text_query, source)
    vis = (view.vision & view.valid).float()
    mass = torch.einsum("bqt,bt->bq", probs.float().mean(1), vis)            # (B, Q)
    mean = S.reduce_queries(mass[..., None], row_valid)                      # (B, 1)
    above = row_valid & (mass > mean)
    none = ~above.any(1, keepdim=True)
    chosen = torch.where(none, row_valid, above)
    out = torch.zeros_like(view.vision)
    out.scatter_(1, rows, chosen)                                            # unchosen rows write False
    out &= view.valid
    empty = ~out.any(1, keepdim=True)
    out |= empty & view.last
    return out


class SparseVLMPolicy(SelectionPolicy):
    def __init__(self, plan: Plan, scale_to_input: bool = False, source: str = "current"):
        super().__init__(plan, scale_to_input=scale_to_input, source=source)
        self.log: list = []   # (layer, raters mask) of the last prefill, for inspection

    def start(self, batch_size: int) -> None:
        super().start(batch_size)
        self.log = []

    def rule(self) -> dict:
        return {"select": "sparsevlm raters", "source": self.source}

    def select(self, layer, view, k):
        r = raters(view, self.source)
        self.log.append((layer, r))
        return view.keep_top(k, query=r, source=self.source)


@register("sparsevlm")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep",
         layers: Sequence[int] | None = None, setting: int = 192, counts: Sequence[float] | None = None,
         recycle: bool = False, scale_to_input: bool = False, source: str = "current"):
    if check_bool("sparsevlm", "recycle", recycle):
        raise option_error("sparsevlm", "recycle", recycle, "false: token recycling (merging pruned tokens "
                           "into kept ones) is not implemented, the engine only removes tokens")
    scale_to_input = check_bool("sparsevlm", "scale_to_input", scale_to_input)
    return SparseVLMPolicy(plan_for(info, budget, kind, layers, setting, counts),
                           scale_to_input=scale_to_input, source=source)
