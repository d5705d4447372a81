"""The one list of methods: every name `vtr eval --method` takes, in one table.

The CLI's `--help` and `--list-methods`, the method registry (`vtr.methods.base.register` refuses a
name missing here) and `policy_for` all read `METHODS`; the book takes display names from it, so a
method is called the same in prose, tables, figures and legends. Standard library only: `vtr --help`
reads it without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass

# where a method acts: the unpruned reference, a searched plan, the decoder, the vision encoder
# (before the decoder), or a composition of two methods
SIDES = ("reference", "searched", "decoder", "encoder", "composed")


@dataclass(frozen=True)
class Method:
    name: str          # the CLI / registry name
    display: str       # the name readers see
    side: str          # one of SIDES
    scored_from: str   # what ranks the vision tokens, and where that score is computed


# "previous": the attention computed inside layer l-1 (its q/k on its own input) ranks the tokens
# entering layer l, as FastV reads layer K-1's attention map; "current": layer l's own q/k on its
# input (PyramidDrop's light-weight attention). tests/methods/test_common.py checks the decoder-side
# entries against each policy's `source`.
METHODS: tuple[Method, ...] = (
    Method("full", "unpruned", "reference", "no score: every vision token in every layer"),
    Method("gsearch", "G-Search", "searched",
           "previous layer: last token's attention (the searched plan's layers)"),
    Method("psigmoid", "P-Sigmoid", "searched",
           "previous layer: last token's attention (the searched plan's layers)"),
    Method("fastv", "FastV", "decoder", "previous layer: last token's attention in layer K-1"),
    Method("pdrop", "PyramidDrop", "decoder",
           "current layer: last token's attention from layer l's q/k, at each stage boundary"),
    Method("sparsevlm", "SparseVLM", "decoder", "current layer: text raters' attention from layer l's q/k"),
    Method("random", "random", "decoder", "no score: a seeded random subset (FastV's schedule)"),
    Method("uniform", "uniform", "decoder", "no score: evenly spaced tokens (FastV's schedule)"),
    Method("vtw", "VTW", "decoder", "no score: every vision token leaves at layer K"),
    Method("dart", "DART", "decoder",
           "previous layer: key norms in layer K-1 pick pivots; the tokens least similar to them stay"),
    Method("dyvte", "DyVTE", "decoder",
           "a router on the last token's hidden state decides at each layer when all vision tokens leave"),
    Method("visionzip", "VisionZip", "encoder",
           "vision encoder: CLS attention in the feature layer (dominant), then merging"),
    Method("prumerge", "PruMerge", "encoder", "vision encoder: CLS attention outliers (IQR), then merging"),
    Method("prumerge_plus", "PruMerge+", "encoder",
           "vision encoder: CLS attention outliers plus spatially sampled tokens, then merging"),
    Method("tome", "ToMe", "encoder", "vision encoder: key similarity (bipartite merging)"),
    Method("cls_knee", "CLS-knee", "encoder",
           "vision encoder: CLS-patch similarity, cut at the knee; then text-image attention in the decoder"),
    Method("divprune", "DivPrune", "encoder", "projected features: greedy max-min cosine diversity"),
    Method("pool", "pooling", "encoder", "no score: average pooling of the projected patch grid"),
    Method("downsample", "downsampling", "encoder", "no score: the image resized to a smaller patch grid"),
    Method("fastv_dyvte", "FastV + DyVTE", "composed", "FastV's previous-layer score, then DyVTE's exit"),
)

BY_NAME = {m.name: m for m in METHODS}
NAMES = tuple(m.name for m in METHODS)
# the methods a registry factory builds (the others are the unpruned model and the saved searches)
REGISTERED = tuple(m.name for m in METHODS if m.side not in ("reference", "searched"))


def display(name: str) -> str:
    """The name readers see for the method `name` (unknown names are returned as they are)."""
    return BY_NAME[name].display if name in BY_NAME else name


def display_label(text: str) -> str:
    """A label that starts with a method's name ("fastv 0.125", a plan at a budget) with that name
    as readers see it ("FastV 0.125"); other text is returned as it is."""
    head, sep, rest = str(text).partition(" ")
    return display(head) + sep + rest if head in BY_NAME else str(text)
