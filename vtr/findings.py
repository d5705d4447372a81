"""Measurements behind what later benchmark studies of vision-token reduction found, on any model
the engine supports.

- `equivalent_tokens`: the budget of a plan or a run in "equivalent tokens", the unit the
  budget-accounting disputes of SparseVLM's and PyramidDrop's trackers argue in.
- `batch_invariance`: whether answers and first-token logits depend on the batch they were
  computed in (lmms-eval#236: LLaVA-1.5-7B on ScienceQA, 69.56 at batch 1 and 58.70 at batch 2;
  LLaVA#1928: padding flips MME answers).
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from .engine import Policy, prune
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


# ---------------------------------------------------------------------------- batch invariance
@torch.inference_mode()
def batch_invariance(runner, split, policy: Policy | None = None, batch_sizes: Sequence[int] = (1, 64),
                     ) -> dict:
    """Answers and first-token logits of `policy` (None: the unpruned model) on the same questions
    of `split`, computed in batches of each size of `batch_sizes` (left-padded by `runner.inputs`,
    consecutive questions in split order, as `vtr.evaluation.loop.evaluate` batches them).

    Per batch, the answers are `runner.predict` and the logits `runner.logits` (the next-token logits
    at each question's last prompt position: the first generated token's; one forward, the same
    `prune` hooks), each in its own `prune` block. Each of the two passes of each batch size runs its
    own copy of `policy` taken before any use, as a fresh evaluation would (a seeded random policy
    replays the same draws, consumed question after question). Every batch size after the first is
    compared with the first: {"n", "batch_sizes", "differing" (per compared size, the number of
    questions whose answer changed), "differing_ids", "max_logit_diff" (the largest absolute
    difference of any logit of any question)}.
    """
    policy = policy or Policy()
    if len(batch_sizes) < 2:
        raise ValueError(f"need at least two batch sizes to compare, got {list(batch_sizes)}")
    samples = split.samples
    answers, logits = {}, {}
    fresh = copy.deepcopy(policy)
    for size in batch_sizes:
        answering, scoring = copy.deepcopy(fresh), copy.deepcopy(fresh)
        preds, rows = [], []
        for i in range(0, len(samples), size):
            inputs = runner.inputs(samples[i:i + size], split)
            with prune(runner.model, answering):
                preds += list(runner.predict(inputs))
            with prune(runner.model, scoring):
                rows.append(runner.logits(inputs).float().cpu())
        answers[size], logits[size] = preds, torch.cat(rows)
    first = batch_sizes[0]
    out = {"n": len(samples), "batch_sizes": list(batch_sizes), "differing": {}, "differing_ids": {},
           "max_logit_diff": {}}
    for size in batch_sizes[1:]:
        ids = [s.id for s, a, b in zip(samples, answers[first], answers[size]) if a != b]
        out["differing"][size] = len(ids)
        out["differing_ids"][size] = ids
        diff = (logits[size] - logits[first]).abs()
        out["max_logit_diff"][size] = float(diff.max()) if len(samples) else 0.0
    return out
