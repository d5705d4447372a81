"""`Plan`: how many vision tokens each decoder layer sees. The common currency of every method.

Semantics: `keep[l]` is the number of vision tokens in the *input* of decoder layer `l`
(0-based). Tokens are dropped at the boundary before layer `l` whenever keep[l] < keep[l-1], so
layer 0 sees `keep[0]` tokens, usually all `n_vision`. `keep[l] == 0` means every vision token
has exited (VTW, DyVTE). An optional `encoder_keep` records a reduction before the decoder
(VisionZip, PruMerge, ToMe); then `n_vision` counts the tokens that reach the decoder.

A plan is static (the same counts for every sample). Methods whose counts vary per sample
(DyVTE, CLS-knee) are dynamic policies in `vtr.engine`; they still report an average plan.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

from .errors import InputError


class PlanError(InputError):
    """A plan that cannot be run: wrong length, counts out of range, or increasing counts."""


@dataclass(frozen=True)
class Plan:
    keep: tuple[int, ...]
    n_vision: int
    encoder_keep: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "keep", tuple(int(k) for k in self.keep))
        if self.n_vision < 0:
            raise PlanError(f"n_vision must be >= 0, got {self.n_vision}")
        for layer, k in enumerate(self.keep):
            if not 0 <= k <= self.n_vision:
                raise PlanError(f"layer {layer}: keep={k} is outside 0..{self.n_vision} "
                                f"(the number of vision tokens available)")
        for layer in range(1, len(self.keep)):
            if self.keep[layer] > self.keep[layer - 1]:
                raise PlanError(f"layer {layer}: keep={self.keep[layer]} > keep={self.keep[layer - 1]} "
                                f"of layer {layer - 1}; dropped tokens cannot come back")

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_counts(cls, counts: Sequence[int], n_vision: int, n_layers: int | None = None,
                    encoder_keep: int | None = None) -> "Plan":
        counts = list(counts)
        if n_layers is not None and len(counts) != n_layers:
            raise PlanError(f"schedule has {len(counts)} entries but the decoder has {n_layers} layers")
        if any(isinstance(c, float) and not float(c).is_integer() for c in counts):
            raise PlanError(f"keep counts must be integers, got {counts}")
        return cls(tuple(int(c) for c in counts), n_vision, encoder_keep)

    @classmethod
    def from_rates(cls, rates: Sequence[float], n_vision: int, n_layers: int | None = None) -> "Plan":
        """Per-layer keep rates in [0, 1] -> counts (rounded to nearest, then made non-increasing)."""
        rates = list(rates)
        if n_layers is not None and len(rates) != n_layers:
            raise PlanError(f"schedule has {len(rates)} entries but the decoder has {n_layers} layers")
        bad = [r for r in rates if not (0.0 <= r <= 1.0) or math.isnan(r)]
        if bad:
            raise PlanError(f"keep rates must lie in [0, 1], got {bad[:3]}")
        counts, prev = [], n_vision
        for r in rates:
            prev = min(prev, int(round(r * n_vision)))
            counts.append(prev)
        return cls(tuple(counts), n_vision)

    @classmethod
    def full(cls, n_layers: int, n_vision: int) -> "Plan":
        return cls((n_vision,) * n_layers, n_vision)

    @classmethod
    def drop_at(cls, n_layers: int, n_vision: int, layer: int, keep: int) -> "Plan":
        """All tokens up to `layer`, then `keep` from `layer` on (FastV with K=layer, VTW with keep=0)."""
        if not 0 <= layer <= n_layers:
            raise PlanError(f"layer must be in 0..{n_layers}, got {layer}")
        return cls(tuple(n_vision if i < layer else keep for i in range(n_layers)), n_vision)

    # ---------------------------------------------------------------- views
    @property
    def n_layers(self) -> int:
        return len(self.keep)

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(k / self.n_vision if self.n_vision else 0.0 for k in self.keep)

    @property
    def mean_keep_rate(self) -> float:
        return sum(self.rates) / max(1, self.n_layers)

    def check_for(self, n_layers: int, n_vision: int) -> None:
        """Raise PlanError unless the plan fits a model with these sizes."""
        if self.n_layers != n_layers:
            raise PlanError(f"plan has {self.n_layers} layers but the decoder has {n_layers}")
        if self.n_vision != n_vision:
            raise PlanError(f"plan was made for {self.n_vision} vision tokens, the input has {n_vision}")

    def to_json(self) -> str:
        return json.dumps({"keep": list(self.keep), "n_vision": self.n_vision,
                           "encoder_keep": self.encoder_keep})

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        d = json.loads(text)
        return cls(tuple(d["keep"]), d["n_vision"], d.get("encoder_keep"))
