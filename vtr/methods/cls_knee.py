"""CLS-knee image-text interaction pruning (Yu, Chen, Xu 2024, arXiv 2409.01162, "Balancing
Performance and Efficiency..." / v2 "Sparsity Meets Similarity: Leveraging Long-Tail Distribution
for Dynamic Optimized Token Representation in MLLMs"). No public code.

Paper: the similarity between the CLS token and the patch tokens follows a long-tail distribution.
Stage 1, per sample: sort the similarities, find the knee (inflection) point of the curve, keep the
tokens before it, so the kept number differs per image. Stage 2, inside the LLM: prune the
concatenated visual and textual tokens whose correlation with the text is low. Claim: about 22% of
the tokens on average at competitive accuracy.

Silent in the paper; chosen here (all parameters):
- Score (`score`): "similarity" (default) = cosine of each patch's feature-layer output with the
  CLS output (`EncoderView.cls_similarity()`); "attention" = CLS attention of that layer.
  The ViT layer is the model's feature layer (the one the projector reads).
- Knee detector (`detector`): "kneedle" (default; Satopaa et al. 2011, offline form: x and the
  sorted curve normalised to [0, 1]; a decreasing convex curve is flipped to y' = 1 - y; the knee
  is the global maximum of the difference curve y' - x, i.e. the point farthest from the chord of
  the normalised curve; the paper needs one knee per image and does not say how it picks it),
  "max_second_difference" (argmax of the
  discrete second difference of the normalised curve), "cumulative_mass" (the smallest count whose
  share of the total mass, after shifting the curve's minimum to 0, reaches `mass` = 0.9). Any
  callable (B, N) sorted-descending curves -> (B,) counts is accepted too. The kept count is the
  knee's index (tokens strictly before it), at least `min_keep` = 1. A flat curve has no knee:
  every token is kept.
- Stage 2 at decoder layer `stage2_layer` (default round(L / 4); `stage2=False` disables): relevance of
  each position = attention of the question tokens (text after the image, `LayerView.text_query`)
  onto it, from that layer's q/k, mean over heads, averaged over the question rows that can see the
  position (causal: a question token is only seen by itself and later rows). Every valid position,
  visual or textual, whose relevance is below `stage2_ratio` (0.5) x the sample's mean relevance is
  dropped (the engine never drops the last token). Samples without question tokens skip stage 2.
- Budget: cls_knee's natural budget is whatever the knee gives (report the mean of
  `last_counts`). A `budget` only caps stage 1: keep min(knee count, round(budget N)) (FLOPs
  budgets: the largest fitting count; stage-2 savings are not counted), so a budgeted run spends
  at most the budget. Fitting a knee multiplier by bisection on a calibration batch is not done.
"""
from __future__ import annotations

from typing import Callable

import torch

from .. import scores as S
from ..engine.policy import EncoderView, LayerView, Policy
from ..errors import InputError
from .base import (ModelInfo, check_bool, check_budget_kind, check_choice, check_int, check_number,
                   option_error, register)
from .encoder import encoder_count, scale_count

SCORES = ("similarity", "attention")


# ---------------------------------------------------------------------- knee detectors
def _rowwise(fn):
    """Let a detector take (B, N) or one (N,) curve (torch or numpy); one curve gives a 0-d tensor."""
    import functools

    @functools.wraps(fn)
    def wrapper(curve, *args, **kwargs):
        c = torch.as_tensor(curve)
        if c.ndim == 1:
            return fn(c[None], *args, **kwargs)[0]
        if c.ndim != 2:
            raise ValueError(f"a knee detector takes (B, N) or (N,) curves, got shape {tuple(c.shape)}")
        return fn(c, *args, **kwargs)
    return wrapper


def _normalise(curve: torch.Tensor):
    """(B, N) -> (x (N,), y (B, N) in [0, 1], flat (B,) bool)."""
    c = curve.double()
    N = c.shape[1]
    x = (torch.linspace(0.0, 1.0, N, dtype=torch.float64, device=c.device) if N > 1
         else torch.zeros(1, dtype=torch.float64))
    lo, hi = c.amin(1, keepdim=True), c.amax(1, keepdim=True)
    rng = hi - lo
    flat = rng[:, 0] <= 1e-12 * hi.abs()[:, 0].clamp_min(1.0)
    y = (c - lo) / rng.clamp_min(1e-300)
    return x, y, flat


@_rowwise
def kneedle(curve: torch.Tensor) -> torch.Tensor:
    """Knee index of each decreasing convex curve (B, N) (sorted descending): Kneedle, offline.

    Normalise x and y to [0, 1], flip y (y' = 1 - y, an increasing concave curve), difference
    curve D = y' - x; the knee is argmax D (first on ties). Flat curves: N.

    D is the difference curve of `kneed.KneeLocator(curve="convex", direction="decreasing")`
    (its `y_difference`), and the knee is D's global maximum. kneed's offline `knee` is instead the
    first local maximum of D after which D falls below that maximum minus S / (N - 1) (S = 1)
    before the next local minimum. On a smooth convex curve D is concave and the two agree; on
    noisy sorted similarities they often do not (kneed may stop at an earlier ripple, or pass over
    a global maximum that does not fall by the threshold): on sorted lognormal samples of 576
    values kneed's knee differs from this one on most curves, by a median of about 20 positions.
    `tests/test_library_crosschecks.py` checks both statements against kneed.
    """
    B, N = curve.shape
    if N < 3:
        return torch.full((B,), N, dtype=torch.long, device=curve.device)
    x, y, flat = _normalise(curve)
    diff = (1.0 - y) - x[None]
    knee = diff.argmax(1)
    return torch.where(flat, torch.full_like(knee, N), knee)


@_rowwise
def max_second_difference(curve: torch.Tensor) -> torch.Tensor:
    """Knee index = argmax over i in 1..N-2 of y[i-1] - 2 y[i] + y[i+1] on the normalised curve. Flat: N."""
    B, N = curve.shape
    if N < 3:
        return torch.full((B,), N, dtype=torch.long, device=curve.device)
    _, y, flat = _normalise(curve)
    d2 = y[:, :-2] - 2.0 * y[:, 1:-1] + y[:, 2:]
    knee = d2.argmax(1) + 1
    return torch.where(flat, torch.full_like(knee, N), knee)


@_rowwise
def cumulative_mass(curve: torch.Tensor, p: float = 0.9) -> torch.Tensor:
    """Smallest count m whose first m values hold >= p of the mass (curve shifted so its minimum
    is 0). Flat: N."""
    check_number("cls_knee", "mass", p, 0.0, 1.0, lo_open=True)
    B, N = curve.shape
    c = curve.double()
    w = c - c.amin(1, keepdim=True)
    total = w.sum(1, keepdim=True)
    cum = w.cumsum(1)
    reached = cum >= p * total * (1 - 1e-12)
    m = reached.double().argmax(1) + 1
    return torch.where(total[:, 0] > 0, m, torch.full_like(m, N))


DETECTORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "kneedle": kneedle,
    "max_second_difference": max_second_difference,
    "cumulative_mass": cumulative_mass,
}


def get_detector(detector, mass: float = 0.9) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(detector):
        return detector
    if detector == "cumulative_mass":
        check_number("cls_knee", "mass", mass, 0.0, 1.0, lo_open=True)
        return lambda c: cumulative_mass(c, mass)
    check_choice("cls_knee", "detector", detector, tuple(DETECTORS))
    return DETECTORS[detector]


def knee_keep(scores: torch.Tensor, detector=kneedle, min_keep: int = 1, cap: int | None = None):
    """Stage 1: (keep (B, N) bool, counts (B,)). Sort each row descending, count = knee index
    (clamped to [min_keep, N], then to <= cap), keep the `count` highest scores."""
    B, N = scores.shape
    curve = torch.sort(scores.float(), dim=1, descending=True, stable=True).values
    counts = torch.as_tensor(detector(curve), device=scores.device).long().reshape(B)
    counts = counts.clamp(min(min_keep, N), N)
    if cap is not None:
        counts = counts.clamp(max=cap)
    valid = torch.ones(B, N, dtype=torch.bool, device=scores.device)
    return S.topk_mask(scores, valid, counts), counts


# ---------------------------------------------------------------------- stage 2
def text_relevance(probs: torch.Tensor, rows: torch.Tensor, row_valid: torch.Tensor) -> torch.Tensor:
    """(B, T) attention of the question rows onto each position: mean over heads, averaged over the
    valid rows at or after the position (the rows that can see it). probs (B, H, Q, T); rows,
    row_valid (B, Q)."""
    p = probs.float().mean(1) * row_valid[..., None]                     # (B, Q, T)
    T = probs.shape[-1]
    sees = (rows[..., None] >= torch.arange(T, device=probs.device)) & row_valid[..., None]
    return p.sum(1) / sees.sum(1).clamp_min(1)


def relevance_keep(relevance: torch.Tensor, candidates: torch.Tensor, ratio: float) -> torch.Tensor:
    """(B, T) keep mask: a candidate stays when its relevance >= ratio x the mean over the sample's
    candidates."""
    c = candidates.float()
    mean = (relevance * c).sum(1, keepdim=True) / c.sum(1, keepdim=True).clamp_min(1.0)
    return ~candidates | (relevance >= ratio * mean)


# ---------------------------------------------------------------------- policy and factory
class ClsKneePolicy(Policy):
    """Stage 1 at the encoder (per-sample knee counts, `last_counts`), stage 2 at `stage2_layer`."""
    may_drop_text = True

    def __init__(self, cap: int | None, n_plan: int, score: str = "similarity", detector="kneedle",
                 mass: float = 0.9, min_keep: int = 1, stage2_layer: int | None = None,
                 stage2_ratio: float = 0.5):
        check_choice("cls_knee", "score", score, SCORES)
        min_keep = check_int("cls_knee", "min_keep", min_keep, lo=1)
        check_number("cls_knee", "stage2_ratio", stage2_ratio, 0.0)
        if stage2_layer is not None:
            check_int("cls_knee", "stage2_layer", stage2_layer, lo=0)
        self.detector = get_detector(detector, mass)
        self.cap, self.n_plan, self.score, self.min_keep = cap, n_plan, score, min_keep
        self.stage2_layer, self.stage2_ratio = stage2_layer, stage2_ratio
        self.last_counts: torch.Tensor | None = None
        self.last_stage2: torch.Tensor | None = None  # (B,) positions dropped by stage 2

    def check_model(self, n_layers: int) -> None:
        if self.stage2_layer is not None:
            check_int("cls_knee", "stage2_layer", self.stage2_layer, 0, n_layers - 1)

    def start(self, batch_size: int) -> None:
        self.last_counts, self.last_stage2 = None, None

    def encoder_step(self, view: EncoderView):
        s = view.cls_similarity() if self.score == "similarity" else view.cls_attention()
        n = s.shape[1]
        cap = None if self.cap is None else scale_count(self.cap, self.n_plan, n)
        keep, self.last_counts = knee_keep(s, self.detector, self.min_keep, cap)
        return view.features, keep

    def keep_before(self, layer: int, view: LayerView):
        if layer != self.stage2_layer:
            return None
        probs, rows, row_valid = view.attention(view.text_query)
        rel = text_relevance(probs, rows, row_valid)
        has_q = row_valid.any(1, keepdim=True)
        keep = relevance_keep(rel, view.valid, self.stage2_ratio) | ~has_q | ~view.valid
        keep = keep | view.last  # produces the output: stays
        self.last_stage2 = (view.valid & ~keep).sum(1)
        return keep


@register("cls_knee")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", score: str = "similarity",
         detector="kneedle", mass: float = 0.9, min_keep: int = 1, stage2: bool = True,
         stage2_layer: int | str | None = "auto", stage2_ratio: float = 0.5) -> ClsKneePolicy:
    """CLS-knee pruning; `budget` caps stage 1 at round(budget N). stage2_layer: "auto" = round(L/4);
    `stage2=False` (or stage2_layer=None) runs stage 1 only."""
    if budget is None:
        check_budget_kind(kind)
        cap = None
    else:
        cap = encoder_count(info, budget, kind)
    if not check_bool("cls_knee", "stage2", stage2):
        stage2_layer = None
    elif stage2_layer == "auto":
        stage2_layer = round(info.n_layers / 4)
    elif stage2_layer is not None:
        try:
            stage2_layer = check_int("cls_knee", "stage2_layer", stage2_layer, 0, info.n_layers - 1)
        except InputError:
            raise option_error("cls_knee", "stage2_layer", stage2_layer,
                               f"an integer in 0..{info.n_layers - 1}, 'auto' or None") from None
    return ClsKneePolicy(cap, info.n_vision, score, detector, mass, min_keep, stage2_layer, stage2_ratio)
