"""The one interface every method implements: which vision tokens survive each layer boundary.

The engine calls `Policy.keep_before(layer, view)` before every decoder layer of a prefill. The
policy returns None (no change) or a boolean mask over the current positions: True = keep. Only
vision entries are read; text tokens always stay. An optional encoder step
(`Policy.encoder_step`) acts on the projected image features before the decoder (it may merge
features into the ones it keeps); the tokens it drops are removed before layer 0.

Policies never touch the model: everything they may look at is in `LayerView` (hidden states,
which positions are vision tokens, their original index, and lazily computed attention scores,
`source="current"` from this layer's own q/k projections on its input, `source="previous"` from
the previous layer's q/k on the previous layer's input, i.e. that layer's attention map; see
`vtr.scores.SCORE_SOURCES`) or `EncoderView`. Before layer 0 there is no previous layer: "previous"
then reads layer 0's own (the only attention there is).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import scores as S
from ..errors import InputError
from ..plan import Plan, PlanError


def last_position(valid: torch.Tensor) -> torch.Tensor:
    """(B, T) bool marking each sample's last valid position: the token whose row gives the logits.
    The engine computes it once per prefill (over the prompt) and carries it through pruning."""
    ar = torch.arange(valid.shape[1], device=valid.device)
    return torch.where(valid, ar, -1).amax(1, keepdim=True) == ar


@dataclass
class LayerView:
    layer: int
    hidden: torch.Tensor        # (B, T, d) input of this layer
    vision: torch.Tensor        # (B, T) bool: position holds a vision token
    valid: torch.Tensor         # (B, T) bool: position is not padding
    vision_index: torch.Tensor  # (B, T) long: original index among the sample's vision tokens, -1 elsewhere
    text_query: torch.Tensor    # (B, T) bool: text tokens after the first vision token (instruction)
    _score: Callable[[str, str, str], torch.Tensor]
    _attention: Callable | None = None
    last: torch.Tensor | None = None  # (B, T) bool: each sample's last prompt token (never pruned)
    _keys: Callable[[str], torch.Tensor] | None = None

    def __post_init__(self):
        if self.last is None:  # views built outside the engine: the last valid position
            self.last = last_position(self.valid)

    def attention(self, query="last", source: str = "current"):
        """(probs (B, H, Q, T), rows (B, Q), row_valid (B, Q)): per-head attention of the query rows
        (a kind, or a (B, T) bool mask of positions) onto every position, from this layer's q/k
        (`source="current"`) or the previous layer's (`"previous"`)."""
        _check_source(source)
        return self._attention(query, source)

    def keys(self, source: str = "current") -> torch.Tensor:
        """(B, H_kv, T, D) keys of every position, rotary applied (what the layer's cache holds), from
        this layer's k projection on its input (`source="current"`) or the previous layer's."""
        _check_source(source)
        if self._keys is None:
            raise UnsupportedInput("this view was built without access to the layers' key projections")
        return self._keys(source)

    @property
    def n_vision(self) -> torch.Tensor:
        """(B,) vision tokens currently present per sample."""
        return (self.vision & self.valid).sum(1)

    def score(self, query="last", heads: str = "mean", source: str = "current") -> torch.Tensor:
        """(B, T) mean attention paid to each vision position by the query rows (0 elsewhere).
        `query`: "last" (last token), "text_mean" (text after the image), or a (B, T) bool mask;
        `source`: "current" or "previous" layer (`vtr.scores.SCORE_SOURCES`)."""
        _check_source(source)
        return self._score(query, heads, source)

    def keep_top(self, k: torch.Tensor | int, query: str = "last", heads: str = "mean",
                 source: str = "current") -> torch.Tensor:
        """Keep mask holding the k[b] highest-scoring vision tokens of each sample."""
        k = torch.as_tensor(k, device=self.hidden.device).expand(self.hidden.shape[0])
        keep = S.topk_mask(self.score(query, heads, source), self.vision & self.valid, k)
        return keep | ~self.vision


def _check_source(source: str) -> None:
    if source not in S.SCORE_SOURCES:
        raise InputError(f"unknown score source {source!r}; expected one of {S.SCORE_SOURCES}")


@dataclass
class EncoderView:
    features: torch.Tensor      # (B, N, d_llm) projected image features (what the decoder receives)
    patch_hidden: torch.Tensor  # (B, N, d_vis) vision-tower output of the patches at the feature layer
    cls_hidden: torch.Tensor | None  # (B, d_vis) CLS output, None when the encoder has no CLS token
    keys: torch.Tensor | None   # (B, H, N, Dh) keys of the feature layer (patches), for similarity merging
    _cls_attention: Callable[[], torch.Tensor] | None
    grid: tuple[int, int] | None  # patch grid (rows, cols) when the features form one grid
    _resized: Callable[[int, int, str], torch.Tensor] | None = None

    def cls_attention(self) -> torch.Tensor:
        """(B, N) CLS -> patch attention in the feature layer (mean over heads)."""
        if self._cls_attention is None:
            raise UnsupportedInput("this vision encoder has no CLS token (e.g. SigLIP, Qwen2-VL): "
                                   "CLS-based methods cannot run on it")
        return self._cls_attention()

    def resized_features(self, rows: int, cols: int, mode: str = "bicubic") -> torch.Tensor:
        """(B, rows * cols, d_llm) projected features of the same images resized to a rows x cols
        patch grid (`torch.nn.functional.interpolate` with `mode`), the tower interpolating its
        position embeddings; raster order."""
        if self._resized is None:
            raise UnsupportedInput("the engine cannot re-encode resized images for this call")
        return self._resized(rows, cols, mode)

    def cls_similarity(self) -> torch.Tensor:
        if self.cls_hidden is None:
            raise UnsupportedInput("this vision encoder has no CLS token: CLS similarity is undefined")
        return S.cls_similarity(self.cls_hidden, self.patch_hidden)


class UnsupportedInput(InputError):
    """The input or model cannot be handled (no image tokens, no CLS token, ...)."""


class Policy:
    """Base policy: keeps everything. Subclasses override `keep_before` and/or `encoder_step`.

    `may_drop_text = True` lets `keep_before` drop text tokens as well (the last token never goes).
    """
    may_drop_text: bool = False

    def check_model(self, n_layers: int) -> None:
        """Called when the policy is installed on a decoder of `n_layers` layers: raise an
        `InputError` naming the mismatch when the policy was made for another depth."""

    def start(self, batch_size: int) -> None:
        """Called at the start of each prefill (reset per-batch state here)."""

    def keep_before(self, layer: int, view: LayerView) -> torch.Tensor | None:
        return None

    def encoder_step(self, view: EncoderView) -> tuple[torch.Tensor, torch.Tensor] | None:
        """None, or (features (B, N, d), keep (B, N) bool): replacement features and which survive."""
        return None

    @property
    def uses_encoder(self) -> bool:
        """True when this policy has an encoder step (it reads or replaces the vision tower's output)."""
        return type(self).encoder_step is not Policy.encoder_step

    def identity(self) -> dict | None:
        """What decides this policy's choices, as JSON data: two policies with equal identities keep
        the same tokens on the same inputs, so one evaluation serves both (`vtr.experiments.evaluations`
        keys run files by it). None: not declared, never shared with another policy. Only the base
        class (nothing pruned) declares one here; a subclass declares its own."""
        return {"select": "none", "plan": None} if type(self) is Policy else None


class PlanPolicy(Policy):
    """A static `Plan` plus a score rule: before layer l keep the top plan.keep[l] vision tokens,
    ranked by the attention of the `query` rows from the `source` layer ("current": layer l's q/k,
    "previous": layer l-1's attention map; `vtr.scores.SCORE_SOURCES`).

    Counts are applied per sample; when a sample has a different number of vision tokens than the
    plan was made for (LLaVA-NeXT any-resolution), the plan's keep *rate* is applied instead.
    """

    def __init__(self, plan: Plan, query: str = "last", heads: str = "mean", scale_to_input: bool = False,
                 source: str = "current"):
        if query not in S.QUERY_KINDS:
            raise InputError(f"unknown query kind {query!r}; expected one of {S.QUERY_KINDS}")
        if heads not in S.HEAD_REDUCTIONS:
            raise InputError(f"unknown head reduction {heads!r}; expected one of {S.HEAD_REDUCTIONS}")
        _check_source(source)
        self.plan, self.query, self.heads, self.scale_to_input = plan, query, heads, scale_to_input
        self.source = source
        self._n0: torch.Tensor | None = None

    def check_model(self, n_layers: int) -> None:
        if self.plan.n_layers != n_layers:
            raise PlanError(f"schedule has {self.plan.n_layers} entries but the decoder has {n_layers} "
                            "layers")

    def target(self, layer: int, n_start: torch.Tensor) -> torch.Tensor:
        """Per-sample keep count before `layer` for samples that started with n_start vision tokens."""
        if self.plan.n_vision == 0:
            return torch.zeros_like(n_start)
        by_rate = torch.round(n_start.double() * self.plan.keep[layer] / self.plan.n_vision).long()
        return torch.where(n_start == self.plan.n_vision, torch.full_like(n_start, self.plan.keep[layer]),
                           by_rate)

    def start(self, batch_size: int) -> None:
        self._n0 = None
        self._exact = False

    def keep_before(self, layer: int, view: LayerView) -> torch.Tensor | None:
        if self._n0 is None:
            self._n0 = view.n_vision.clone()
            # a sample without image tokens (a text-only item) has nothing to prune: it never counts as off
            off = ((self._n0 != self.plan.n_vision) & (self._n0 > 0)).nonzero()
            if len(off) and not self.scale_to_input:
                b = int(off[0])
                raise PlanError(f"the plan was made for {self.plan.n_vision} vision tokens but sample {b} "
                                f"has {int(self._n0[b])}; pass scale_to_input=True to apply its keep rates "
                                "instead")
            self._exact = not len(off)
        # Fast path (every sample has the plan's token count): counts never grow, so a layer whose
        # keep equals the previous layer's has nothing to drop; skip the per-sample bookkeeping.
        if self._exact and self.plan.keep[layer] == (self.plan.keep[layer - 1] if layer
                                                     else self.plan.n_vision):
            return None
        k = torch.minimum(self.target(layer, self._n0), view.n_vision)
        if bool((k == view.n_vision).all()):
            return None
        keep = self.select(layer, view, k)
        return (keep & view.vision & view.valid) | ~view.vision

    def select(self, layer: int, view: LayerView, k: torch.Tensor) -> torch.Tensor:
        """Which k[b] vision tokens of sample b survive: the top-scoring ones (override for other rules)."""
        return view.keep_top(k, self.query, self.heads, self.source)

    def rule(self) -> dict | None:
        """How `select` ranks tokens, as data. A subclass with its own `select` declares its own rule
        (or keeps None: its evaluations are never shared)."""
        if type(self).select is not PlanPolicy.select:
            return None
        return {"select": "attention", "query": self.query, "heads": self.heads, "source": self.source}

    def identity(self) -> dict | None:
        """The plan and the selection rule. When no layer chooses among tokens (each layer keeps
        all that arrive or none, e.g. FastV with R=1 or VTW), the rule cannot matter and is left
        out, so every method with that plan shares one evaluation."""
        if type(self).keep_before is not PlanPolicy.keep_before or self.uses_encoder or self.may_drop_text:
            return None
        keep, n = list(self.plan.keep), self.plan.n_vision
        plan = {"plan": keep, "n_vision": n, "scale_to_input": self.scale_to_input}
        arriving = [n, *keep[:-1]]
        if all(k in (0, before) for k, before in zip(keep, arriving)):
            return {"select": "none", **plan}
        rule = self.rule()
        return None if rule is None else {**rule, **plan}
