"""Measurements behind what later benchmark studies of vision-token reduction found, on any model
the engine supports.

- `equivalent_tokens`: the budget of a plan or a run in "equivalent tokens", the unit the
  budget-accounting disputes of SparseVLM's and PyramidDrop's trackers argue in.
- `batch_invariance`: whether answers and first-token logits depend on the batch they were
  computed in (lmms-eval#236: LLaVA-1.5-7B on ScienceQA, 69.56 at batch 1 and 58.70 at batch 2;
  LLaVA#1928: padding flips MME answers).
- `attention_profile`: per decoder layer, how much of the last prompt token's attention goes to the
  vision tokens, how concentrated it is on a few of them, and which tokens act as attention sinks
  (FastV, Chen et al., 2024a: in LLaVA's deep layers image tokens receive little attention,
  concentrated on a few tokens).

The pure statistics (`vision_share`, `concentration`, `sink_scores`, `norm_ratios`) work on one
sample's attention rows and hidden states; the recorders apply them inside the engine's layer
boundaries, as `vtr.analysis` does, and never prune.
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import Sequence

import numpy as np
import torch

from .engine import Policy, prune
from .plan import Plan

TOP_SHARES = (0.01, 0.10)  # the concentration's top fractions of the vision tokens


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
                     patched: bool = True) -> dict:
    """Answers and first-token logits of `policy` (None: the unpruned model) on the same questions
    of `split`, computed in batches of each size of `batch_sizes` (left-padded by `runner.inputs`,
    consecutive questions in split order, as `vtr.evaluation.loop.evaluate` batches them).

    Per batch, the answers are `runner.predict` and the logits `runner.logits` (the next-token logits
    at each question's last prompt position: the first generated token's; one forward, the same
    `prune` hooks), each in its own `prune` block. Each of the two passes of each batch size runs its
    own copy of `policy` taken before any use, as a fresh evaluation would (a seeded random policy
    replays the same draws, consumed question after question). A runner whose answers are decided by
    those logits (`Runner.answers_from_logits`: the testbed's argmax) answers from the logits pass,
    which is the answering pass's forward under an identical copy of the policy. A runner that shares
    images across evaluations (the testbed) runs with its memos (`Runner.feature_cache`), whose keys
    are the batch's own tensors: a hit is what the same batch computed before. Every batch size
    after the first is compared with the first: {"n", "batch_sizes", "differing" (per compared size,
    the number of questions whose answer changed), "differing_ids", "max_logit_diff" (the largest
    absolute difference of any logit of any question)}. `patched=False` runs the model without the
    engine's hooks at all (`policy` must then be None): the unpatched model, as a reader's own code runs it.
    """
    if not patched and policy is not None:
        raise ValueError("an unpatched model runs no policy: pass policy=None with patched=False")
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
            with _hooks(runner, scoring, patched):
                rows.append(runner.logits(inputs))
            answered = runner.answers_from_logits(rows[-1])
            if answered is None:
                with _hooks(runner, answering, patched):
                    answered = runner.predict(inputs)
            preds += list(answered)
            rows[-1] = rows[-1].float().cpu()
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


@contextlib.contextmanager
def _hooks(runner, policy: Policy, patched: bool):
    """The engine's hooks with `policy`, and for a runner that shares images across evaluations its
    memos (`Runner.feature_cache`: keyed by the batch's own tensors, so a batch of 1 and a batch of
    64 never share an entry, and a hit is what the same batch computed before); `patched=False`:
    nothing at all."""
    if not patched:
        yield
        return
    memo = runner.feature_cache().attached(runner.model) if runner.shares_images else contextlib.nullcontext()
    with prune(runner.model, policy), memo:
        yield


# ---------------------------------------------------------------------------- attention statistics
def vision_share(attention: np.ndarray, vision: np.ndarray) -> float:
    """Share of one query row's attention (probabilities over positions, heads already averaged)
    that goes to the vision positions (`vision`, a bool mask of the same length)."""
    return float(np.asarray(attention, dtype=float)[np.asarray(vision, dtype=bool)].sum())


def top_count(n: int, share: float) -> int:
    """Tokens in the top `share` of n tokens: floor(share * n), at least one (1% of 144 is 1)."""
    return max(1, math.floor(share * n + 1e-9)) if n else 0


def concentration(vision_attention: np.ndarray, shares: Sequence[float] = TOP_SHARES) -> dict:
    """Share of the attention on the vision tokens held by their top `share` (`top_count` tokens, the
    most attended), per share: {share: fraction in [0, 1]}. Uniform attention gives
    top_count / n; NaN when the vision tokens receive no attention at all."""
    a = np.sort(np.asarray(vision_attention, dtype=float))[::-1]
    total = a.sum()
    return {s: float(a[:top_count(len(a), s)].sum() / total) if total > 0 else float("nan") for s in shares}


def sink_scores(attention_rows: np.ndarray, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Attention-sink score of every position: the least attention it receives from any of the
    query rows, min over rows i of attention_rows[i, j] (heads averaged). A position scores high
    only when every row attends to it. Causal attention lets row i see positions <= i only, so the
    candidates are the valid positions before the first row (the context every row reads; with the
    instruction rows, the system prompt and the image); the others get NaN.

    attention_rows (Q, T) probabilities; rows (Q,) their positions; valid (T,) bool."""
    a = np.asarray(attention_rows, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    out = np.full(a.shape[1], np.nan)
    if a.shape[0] == 0:
        return out
    cand = valid & (np.arange(a.shape[1]) < int(np.min(rows)))
    out[cand] = a[:, cand].min(0)
    return out


def norm_ratios(hidden: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """L2 norm of each position's hidden state divided by the median norm over the valid positions
    (NaN at padding): attention sinks of LLMs often carry outsized norms."""
    h = np.asarray(hidden, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    norms = np.linalg.norm(h, axis=-1)
    out = np.full(len(norms), np.nan)
    out[valid] = norms[valid] / np.median(norms[valid])
    return out


class _ProfileRecorder(Policy):
    """Per layer and sample: the last token's attention statistics and the attention sinks."""

    def __init__(self, shares: Sequence[float], n_sinks: int):
        self.shares, self.n_sinks, self.rows = tuple(shares), n_sinks, []

    def keep_before(self, layer, view):
        last, _, _ = view.attention("last")  # (B, H, 1, T): this layer's own attention
        last = last.mean(1)[:, 0].float().cpu().numpy()
        probs, rows, row_valid = view.attention(view.text_query)  # the instruction rows
        probs = probs.mean(1).float().cpu().numpy()
        rows, row_valid = rows.cpu().numpy(), row_valid.cpu().numpy()
        vision = (view.vision & view.valid).cpu().numpy()
        valid = view.valid.cpu().numpy()
        index = view.vision_index.cpu().numpy()
        hidden = view.hidden.float().cpu().numpy()
        for b in range(len(last)):
            vis = last[b][vision[b]]
            first = int(np.argmax(valid[b]))
            rec = {"layer": layer, "vision_share": vision_share(last[b], vision[b]),
                   "n_vision": int(vision[b].sum()), "sinks": [],
                   **{f"top_{s:g}": v for s, v in concentration(vis, self.shares).items()}}
            q = row_valid[b]
            if q.any():
                score = sink_scores(probs[b][q], rows[b][q], valid[b])
                ratio = norm_ratios(hidden[b], valid[b])
                ranked = np.argsort(-np.nan_to_num(score, nan=-1.0), kind="stable")
                order = [int(j) for j in ranked if not np.isnan(score[j])]
                for j in order[:self.n_sinks]:
                    kind = "first" if j == first else "vision" if vision[b, j] else "text"
                    rec["sinks"].append({"position": j - first, "kind": kind,
                                         "vision_index": int(index[b, j]) if kind == "vision" else None,
                                         "min_attention": float(score[j]), "norm_ratio": float(ratio[j])})
                rec["max_norm_ratio"] = float(np.nanmax(ratio))
            self.rows.append(rec)
        return None


@torch.inference_mode()
def attention_profile(runner, split, shares: Sequence[float] = TOP_SHARES, n_sinks: int = 3,
                      batch_size: int = 16) -> dict:
    """How the unpruned model's attention looks, per decoder layer, on the questions of `split`
    (each layer's own attention map from its q/k on its input, heads averaged; nothing is pruned):

    - "vision_share": share of the last prompt token's attention on the vision tokens;
    - "top_<share>" (share in `shares`): share of that vision attention held by the top `share` of
      the vision tokens (`concentration`; at least one token), beside "uniform_<share>", the value
      uniform attention would give;
    - sinks: the positions with the highest `sink_scores` from the instruction rows (the text after
      the image, last token included): "sink_attention", the top sink's least attention received
      from any instruction row; "sink_norm_ratio", its hidden-state L2 norm (the layer's input) over
      the median norm of the question's tokens; "sink_kinds", how often the top sink is the first
      token, a vision token or other text; "max_norm_ratio", the largest norm ratio of any token.

    Layer rows are means over the questions; {"layers": [...], "samples": the per-question rows
    (with the `n_sinks` top sinks each)}."""
    rec = _ProfileRecorder(shares, n_sinks)
    for i in range(0, len(split), batch_size):
        inputs = runner.inputs(split.samples[i:i + batch_size], split)
        with prune(runner.model, rec):
            runner.logits(inputs)
    return {"layers": summarise_profile(rec.rows, shares), "samples": rec.rows}


def summarise_profile(samples: list[dict], shares: Sequence[float] = TOP_SHARES) -> list[dict]:
    """Per-layer means of `attention_profile`'s per-question rows."""
    out = []
    for layer in sorted({r["layer"] for r in samples}):
        rs = [r for r in samples if r["layer"] == layer]
        n = int(np.median([r["n_vision"] for r in rs]))
        row = {"layer": layer, "questions": len(rs),
               "vision_share": float(np.mean([r["vision_share"] for r in rs]))}
        for s in shares:
            row[f"top_{s:g}"] = float(np.nanmean([r[f"top_{s:g}"] for r in rs]))
            row[f"uniform_{s:g}"] = top_count(n, s) / n if n else float("nan")
        tops = [r["sinks"][0] for r in rs if r["sinks"]]
        if tops:
            row["sink_attention"] = float(np.mean([t["min_attention"] for t in tops]))
            row["sink_norm_ratio"] = float(np.mean([t["norm_ratio"] for t in tops]))
            row["sink_kinds"] = {k: sum(t["kind"] == k for t in tops) for k in ("first", "vision", "text")}
            row["max_norm_ratio"] = float(np.mean([r["max_norm_ratio"] for r in rs if "max_norm_ratio" in r]))
        out.append(row)
    return out
