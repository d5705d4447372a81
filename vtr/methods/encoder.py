"""What the encoder-side methods share (VisionZip, PruMerge, ToMe, CLS-knee): the token count a
budget allows and its static plan, scaling a count to the input, the feature layer's keys as a
similarity metric, and `EncoderPolicy`, the base policy that cuts to a count at the encoder."""
from __future__ import annotations

import torch

from ..engine.policy import EncoderView, Policy, UnsupportedInput
from ..plan import Plan, PlanError
from .base import ModelInfo, check_budget, check_budget_kind


def encoder_count(info: ModelInfo, budget: float, kind: str = "keep") -> int:
    """Vision tokens an encoder-side cut may pass to the decoder under `budget`.

    The cut counts at every decoder layer: kind "keep" keeps round(budget * N); kind "flops" keeps
    the largest count whose decoder prefill FLOPs fraction is <= budget. At least one token.
    """
    check_budget(budget)
    check_budget_kind(kind)
    n = info.n_vision
    if kind == "keep":
        k = round(budget * n)
    else:
        k = next((c for c in range(n, -1, -1) if info.cost(encoder_plan(info, c), kind) <= budget + 1e-9), 0)
    if k < 1:
        raise PlanError(f"budget {budget} ({kind}) leaves no vision token of {n}; "
                        "encoder-side methods keep at least one")
    return k


def encoder_plan(info: ModelInfo, count: int) -> Plan:
    """The static plan of an encoder-side cut to `count` tokens (the same count at every layer)."""
    return Plan((count,) * info.n_layers, info.n_vision)


def scale_count(count: int, n_plan: int, n: int) -> int:
    """A count made for n_plan tokens, applied to an input with n tokens (same rate, at least 1)."""
    if n == n_plan:
        return min(count, n)
    return max(1, min(n, round(count * n / max(1, n_plan))))


def head_mean_keys(view: EncoderView) -> torch.Tensor:
    """(B, N, Dh) keys of the feature layer averaged over heads (VisionZip / ToMe metric)."""
    if view.keys is None:
        raise UnsupportedInput("this method needs the keys of the vision tower's feature layer, "
                               "which the engine could not capture for this model")
    return view.keys.float().mean(1)


def flat_keys(view: EncoderView) -> torch.Tensor:
    """(B, N, H*Dh) keys of the feature layer, heads concatenated (the k_proj output; PruMerge)."""
    if view.keys is None:
        raise UnsupportedInput("this method needs the keys of the vision tower's feature layer, "
                               "which the engine could not capture for this model")
    B, H, N, D = view.keys.shape
    return view.keys.float().permute(0, 2, 1, 3).reshape(B, N, H * D)


class EncoderPolicy(Policy):
    """An encoder-side policy: `reduce(view, k)` returns (features, keep) for a target count k (None
    for a method's own adaptive count). Records `last_counts` (B,) = tokens kept per sample in the
    last prefill; `plan` is the static plan when the count is fixed (None when adaptive)."""

    def __init__(self, count: int | None, n_plan: int, plan: Plan | None = None):
        self.count, self.n_plan, self.plan = count, n_plan, plan
        self.last_counts: torch.Tensor | None = None

    def start(self, batch_size: int) -> None:
        self.last_counts = None

    def reduce(self, view: EncoderView, k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def encoder_step(self, view: EncoderView):
        n = view.features.shape[1]
        k = None if self.count is None else scale_count(self.count, self.n_plan, n)
        feats, keep = self.reduce(view, k)
        self.last_counts = keep.sum(1)
        return feats.to(view.features.dtype), keep
