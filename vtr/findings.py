"""Measurements behind what later benchmark studies of vision-token reduction found, on any model
the engine supports.

- `equivalent_tokens`: the budget of a plan or a run in "equivalent tokens", the unit the
  budget-accounting disputes of SparseVLM's and PyramidDrop's trackers argue in.
"""
from __future__ import annotations

import numpy as np

from .plan import Plan


# ---------------------------------------------------------------------------- equivalent tokens
def equivalent_tokens(source) -> float:
    """Equivalent vision tokens: the number of vision tokens in a decoder layer's input, averaged
    over the decoder's L layers with equal weight,

        E = (1 / L) * sum_l n_l,    n_l = vision tokens entering layer l (0-based),

    which is the same as summing, over the vision tokens, the number of decoder layers each one
    passes through, and dividing by L: a token dropped before layer l counts for the l layers it
    crossed. Tokens removed before layer 0 (an encoder-side method: VisionZip, PruMerge, DivPrune,
    pooling, downsampling) pass through no layer and count at none; equivalently the count that
    reaches the decoder counts at every layer, so an encoder cut to k tokens has E = k. A `Plan`
    with `encoder_keep` has its counts capped at it.

    E is mathematically the mean keep count: E = `Plan.mean_keep_rate` * n_vision for a plan, and
    E = `keep_rate` * n_vision = mean(`vision_per_layer`) for a summary record of
    `vtr.evaluation.loop.evaluate` (whose per-layer counts are those the engine saw, averaged over
    the questions). It is not a cost: attention grows with the square of a layer's tokens, so
    two plans of equal E have different FLOPs (the `flops_ratio` of a record) unless their
    schedules agree; by convexity an uneven schedule costs more than an even one of the same E.

    `source`: a `Plan`, a summary record (a dict with "vision_per_layer"), per-layer counts (L,)
    or per-question counts (questions, L), which are averaged over the questions."""
    if isinstance(source, Plan):
        cap = source.n_vision if source.encoder_keep is None else source.encoder_keep
        counts = np.minimum(np.array(source.keep, dtype=float), cap)
    elif isinstance(source, dict):
        counts = np.asarray(source["vision_per_layer"], dtype=float)
    else:
        counts = np.asarray(source, dtype=float)
    if counts.ndim not in (1, 2) or counts.shape[-1] == 0:
        raise ValueError("per-layer counts must be (layers,) or (questions, layers), got shape "
                         f"{counts.shape}")
    return float(counts.mean())
