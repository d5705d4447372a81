"""Evaluate a model under a policy on a split: resumable, batched, with the realised cost.

Per-sample outputs are appended to a JSONL file as each batch finishes (`out`), so an
interrupted evaluation continues where it stopped and loses no finished batch. The file's first
line is a header with the run's fingerprint (`vtr.fingerprint`: model and weights, split, limit
and samples, method, budget, hyper-parameters, seed, code version); resuming a file made by any
other configuration is refused, naming the fields that differ, so finished work of one
configuration is never mixed into another's. Writes go through `vtr.journal` (a torn last line
of a killed run is dropped, never trusted). The summary has
the benchmark's metrics plus the cost actually spent: mean vision tokens per layer, mean keep
rate, and decoder prefill FLOPs ratio computed from the per-sample token counts the engine saw.

The loop drives any *runner* (`vtr.runners.Runner`): it turns samples into model inputs and
outputs into answers (`vtr.testbed.runner.TestbedRunner`: next-token argmax at the answer trigger;
`vtr.runners.hf.HFRunner`: chat template + greedy generation).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .. import journal, timeline
from ..benchmarks.jsonl import Split
from ..engine import FeatureCache, Policy, prune
from ..flops import DecoderShape, layer_flops
from .run_files import read_run, start_run


def evaluate(runner, split: Split, policy: Policy | None = None, *, out: Path | None = None,
             batch_size: int = 64, progress: bool = True, blank: bool = False,
             on_batch: Callable | None = None, features: FeatureCache | None = None,
             fingerprint: dict | None = None) -> dict:
    """Run the split; returns {"metrics", "mean_tokens", "keep_rate", "flops_ratio", "n"}.
    `features`: reuse image-encoder outputs across calls (see `vtr.engine.memo`): same
    predictions, about half the compute on the testbed. `out` + `fingerprint`: resumable run file
    (see the module docstring)."""
    policy = policy or Policy()
    done = read_run(out, fingerprint)
    todo = [s for s in split.samples if s.id not in done]
    if out is not None:
        start_run(out, fingerprint)
    model = runner.model
    shape = DecoderShape.from_config(model.config.get_text_config())
    bar = tqdm(total=len(split), initial=len(split) - len(todo), desc="eval", disable=not progress,
               leave=False)
    watch = timeline.Stopwatch()
    memo_before = _memo_counts(features)
    for i in range(0, len(todo), batch_size):
        chunk = todo[i:i + batch_size]
        with watch("inputs"):  # tokenisation, image loading and preprocessing
            inputs = runner.inputs(chunk, split, blank=blank)
        reuse = features.attached(model) if features is not None else contextlib.nullcontext()
        with watch("model"), prune(model, policy) as session, reuse:
            preds = runner.predict(inputs)
        stats = session.last_stats
        recs = []
        for b, s in enumerate(chunk):
            recs.append({"id": s.id, "pred": preds[b],
                         "tokens": stats["token_counts"][b].tolist(),
                         "vision": stats["vision_counts"][b].tolist(),
                         "tokens_full": [int(inputs["attention_mask"][b].sum())] * shape.n_layers})
        if out is not None:
            journal.append(out, recs)
        for r in recs:
            done[r["id"]] = r
        if on_batch:
            on_batch(recs)
        bar.update(len(chunk))
    bar.close()
    recs = [done[s.id] for s in split.samples]
    summary = {"metrics": runner.score(split.samples, [r["pred"] for r in recs]), "n": len(recs)}
    summary.update(cost(recs, shape, runner.n_vision))
    if timeline.enabled():
        memo = {k: v - memo_before[k] for k, v in _memo_counts(features).items()}
        timeline.record("evaluate", model=getattr(runner, "name", ""), run=out.stem if out else "",
                        policy=type(policy).__name__, n=len(split), evaluated=len(todo),
                        batch_size=batch_size, batches=-(-len(todo) // batch_size), memo=memo,
                        seconds={**watch.seconds, "total": watch.total()})
    return summary


def _memo_counts(features: FeatureCache | None) -> dict[str, int]:
    names = ("hits", "misses", "layer_hits", "layer_misses", "prefix_hits", "prefix_misses")
    return {k: getattr(features, k) if features is not None else 0 for k in names}


def cost(recs: list[dict], shape: DecoderShape, n_vision: int) -> dict:
    """Realised cost from per-sample token counts: mean vision tokens, keep rate, FLOPs ratio."""
    vis = torch.tensor([r["vision"] for r in recs], dtype=torch.float64)
    pruned = sum(layer_flops(n, shape) for r in recs for n in r["tokens"])
    full = sum(layer_flops(n, shape) for r in recs for n in r["tokens_full"])
    return {"mean_tokens": float(vis.mean()), "keep_rate": float(vis.mean() / n_vision),
            "flops_ratio": pruned / full, "vision_per_layer": vis.mean(0).tolist()}
