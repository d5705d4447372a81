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


def vision_tower_flops(vision_config, n_images: int = 1) -> int:
    """CLIP-style ViT FLOPs for one forward: patch embedding + every encoder layer on CLS + patches."""
    d, m = vision_config.hidden_size, vision_config.intermediate_size
    p, s = vision_config.patch_size, vision_config.image_size
    n_patch = (s // p) ** 2
    n = n_patch + 1
    embed = 2 * n_patch * (3 * p * p) * d
    per_layer = 2 * 4 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * m
    return n_images * (embed + vision_config.num_hidden_layers * per_layer)


def prefill_flops(model, token_counts, n_images: int) -> int:
    """Whole prefill of a LLaVA-style model: vision tower + projector + decoder (per-layer token
    counts, a (B, L) array-like) + LM head on the last position of each sample."""
    text_cfg = model.config.get_text_config()
    shape = DecoderShape.from_config(text_cfg)
    vcfg = model.config.vision_config
    n_patch = (vcfg.image_size // vcfg.patch_size) ** 2
    proj = n_images * 2 * n_patch * (vcfg.hidden_size * shape.hidden + shape.hidden * shape.hidden)
    counts = [int(n) for row in token_counts for n in row]
    head = len(token_counts) * 2 * shape.hidden * text_cfg.vocab_size
    return vision_tower_flops(vcfg, n_images) + proj + sum(layer_flops(n, shape) for n in counts) + head


def scoring_flops(n_tokens: int, n_query: int, shape: DecoderShape) -> int:
    """Cost of one importance score at a layer boundary: keys for all tokens, queries for the query
    rows, and their products (what `vtr.engine` computes instead of asking for attention maps)."""
    d, dkv = shape.hidden, shape.kv_hidden or shape.hidden
    return 2 * n_tokens * d * dkv + 2 * n_query * d * d + 2 * n_query * n_tokens * d
