"""FLOPs of a decoder run under a plan (prefill), counted like `torch.utils.flop_counter`.

Per decoder layer with n tokens, hidden d, FFN width m, key/value width d_kv (GQA):
    q, o projections     2 * 2 n d^2
    k, v projections     2 * 2 n d d_kv
    scores and mixing    2 * 2 n^2 d        (SDPA computes the full square; causality is masked)
    gated MLP            3 * 2 n d m         (gate, up, down; a plain MLP has 2)
The main paper quotes the MAC count 4nd^2 + 2n^2d + 2ndm for d_kv = d and a 2-matrix MLP:
`paper_layer_macs` gives it; both give nearly the same ratios. The LM head (on the kept
positions only) and the vision tower are added separately; ratios in the book are of prefill
totals, pruned / unpruned.
"""
from __future__ import annotations

from dataclasses import dataclass

from .plan import Plan


@dataclass(frozen=True)
class DecoderShape:
    hidden: int
    intermediate: int
    n_layers: int
    kv_hidden: int | None = None  # defaults to hidden (no GQA)
    gated_mlp: bool = True

    @classmethod
    def from_config(cls, text_config) -> "DecoderShape":
        d = text_config.hidden_size
        heads = text_config.num_attention_heads
        kv = getattr(text_config, "num_key_value_heads", None) or heads
        head_dim = getattr(text_config, "head_dim", None) or d // heads
        return cls(hidden=d, intermediate=text_config.intermediate_size,
                   n_layers=text_config.num_hidden_layers, kv_hidden=kv * head_dim)


def layer_flops(n: int, shape: DecoderShape) -> int:
    d, m = shape.hidden, shape.intermediate
    dkv = shape.kv_hidden or d
    proj = 2 * 2 * n * d * d + 2 * 2 * n * d * dkv
    attn = 2 * 2 * n * n * d
    mlp = (3 if shape.gated_mlp else 2) * 2 * n * d * m
    return proj + attn + mlp


def paper_layer_macs(n: int, d: int, m: int) -> int:
    """The main paper's per-layer count: 4nd^2 + 2n^2d + 2ndm."""
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m


def decoder_flops(plan: Plan, n_text: int, shape: DecoderShape) -> int:
    """Prefill FLOPs of all decoder layers; each layer sees n_text + keep[l] tokens."""
    plan.check_for(shape.n_layers, plan.n_vision)
    return sum(layer_flops(n_text + k, shape) for k in plan.keep)


def flops_ratio(plan: Plan, n_text: int, shape: DecoderShape) -> float:
    """Decoder prefill FLOPs under `plan` divided by those of the unpruned model."""
    full = Plan.full(shape.n_layers, plan.n_vision)
    return decoder_flops(plan, n_text, shape) / decoder_flops(full, n_text, shape)


def kv_cache_entries(plan: Plan, n_text: int) -> int:
    """Cached key/value positions summed over layers (bytes = entries * 2 * kv_hidden * dtype size)."""
    return sum(n_text + k for k in plan.keep)
