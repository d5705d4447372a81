"""The experiments behind the book, as functions the CLI and the notebooks both call.

Everything is resumable: searches keep a JSONL trace, evaluations a per-sample JSONL run file,
and summaries are appended to the results store (`vtr.results`). Smoke mode (`VTR_SMOKE=1`)
shrinks splits and budgets so every chapter executes in CI within minutes.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from . import fingerprint as fp
from . import methods, results
from .engine import FeatureCache, PlanPolicy, Policy, prune
from .evaluate import evaluate
from .paths import TESTBEDS, results_dir, smoke
from .plan import Plan


def limits() -> dict:
    """Split sizes: full runs use all of val (600) and test (2400); smoke runs use slices."""
    return {"val": 48, "test": 96} if smoke() else {"val": None, "test": None}


_TESTBED: dict = {}  # one runner per testbed and process, so its image-feature cache serves every experiment


def testbed(split: str, model: str = "testbed"):
    """The runner of a shipped testbed (`vtr.paths.TESTBEDS`) and its split at the book's size."""
    from .models import load, load_split

    if model not in _TESTBED:
        _TESTBED[model] = load(model)
    return _TESTBED[model], load_split(model, split, limits()[split])


def features_for(runner) -> FeatureCache:
    """The runner's image-feature cache (created on first use; see `vtr.engine.features`)."""
    if getattr(runner, "features", None) is None:
        # the testbed's book run holds val and test (with the encoder captures and the first three
        # decoder layers of the unpruned runs): ~2.5 GB of 24
        testbed = runner.name in TESTBEDS
        runner.features = FeatureCache(max_bytes=(4 << 30) if testbed else 1 << 30,
                                       decoder_layers=3 if testbed else 0)
    return runner.features


def info_for(runner, split):
    return methods.model_info(runner.model, runner.n_vision, runner.n_text(split))


# The score source of the searched plans: the main paper ranks each layer's tokens by the attention
# of the previous layer (as FastV does); "current" (PyramidDrop's rule) is the alternative reported.
SEARCH_SOURCE = "previous"


def val_scorer(runner, split, query: str = "last", batch_size: int = 100, source: str = SEARCH_SOURCE):
    """score(plan) = overall accuracy of the split under PlanPolicy(plan, query, source). Its
    `fingerprint` (model and weights, split, limit and samples, query, source, code version) goes
    into a search trace's header, so a trace is resumed only by a search with the same scorer."""
    def score(plan: Plan) -> float:
        return headline(evaluate(runner, split, PlanPolicy(plan, query=query, source=source), batch_size=batch_size,
                                 progress=False, features=features_for(runner))["metrics"])
    score.name = "val_accuracy"
    score.fingerprint = {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "query": query,
                         "source": source, "code": fp.code_version()}
    return score


def search_name(search: str, query: str, source: str, budget=None, kind: str = "keep") -> str:
    """Name of a saved searched plan in the results folder."""
    suffix = "" if source == SEARCH_SOURCE else f"_{source}"
    return (f"gsearch_{query}" if search == "gsearch" else f"psigmoid_{kind}{budget}_{query}") + suffix


def run_fingerprint(runner, split, name: str, budget, kind: str, seed: int, hp: dict, policy: Policy) -> dict:
    """What an evaluation's run file must have been made by to be resumed (`vtr.fingerprint`)."""
    plan = getattr(policy, "plan", None)
    return {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "bench": getattr(runner, "bench", None),
            "method": name, "budget": budget, "kind": kind, "seed": seed, "hyperparameters": hp,
            "plan": None if plan is None else list(plan.keep), "code": fp.code_version()}


def _run_dir() -> Path:
    d = results_dir() / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_gsearch(runner, split, tolerance: float = 0.005, query: str = "last", start_layer: int = 1,
                progress: bool = True, source: str = SEARCH_SOURCE) -> dict:
    from .search import Trace, gsearch

    info = info_for(runner, split)
    trace = Trace(_run_dir() / f"{search_name('gsearch', query, source)}_tol{tolerance}.trace.jsonl")
    res = gsearch(val_scorer(runner, split, query, source=source), info.n_layers, info.n_vision, tolerance,
                  start_layer=start_layer, flops_fn=lambda p: info.cost(p, "flops"), trace=trace, progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "flops_ratio": res.flops_ratio,
           "keep_rate": res.plan.mean_keep_rate, "val_score": res.score, "reference": res.reference,
           "evaluations": res.evaluations, "tolerance": tolerance, "query": query, "source": source,
           "trace": [{k: r[k] for k in ("plan", "score", "flops_ratio", "seconds") if k in r} for r in res.records]}
    results.save_json(search_name("gsearch", query, source), out)
    return out


def run_psigmoid(runner, split, budget: float, kind: str = "keep", init_plan: Plan | None = None,
                 query: str = "last", n_iter: int | None = None, seed: int = 0, progress: bool = True,
                 source: str = SEARCH_SOURCE) -> dict:
    from .search import Trace, psigmoid_search

    info = info_for(runner, split)
    n_iter = n_iter or (6 if smoke() else 40)
    trace = Trace(_run_dir() / f"{search_name('psigmoid', query, source, budget, kind)}_s{seed}.trace.jsonl")
    res = psigmoid_search(val_scorer(runner, split, query, source=source), info.n_layers, info.n_vision, budget,
                          kind=kind,
                          init=init_plan, n_iter=n_iter, seed=seed, trace=trace,
                          flops_fn=lambda p: info.cost(p, "flops"), progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "params": res.params.__dict__,
           "flops_ratio": res.flops_ratio, "keep_rate": res.plan.mean_keep_rate, "val_score": res.score,
           "evaluations": res.evaluations, "budget": budget, "kind": kind, "budget_achieved": res.budget_achieved,
           "query": query, "source": source,
           "history": [{k: v for k, v in h.items() if k in ("score", "plan", "params")} if isinstance(h, dict) else h
                       for h in res.history]}
    results.save_json(search_name("psigmoid", query, source, budget, kind), out)
    return out


def policy_for(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0, **hp) -> Policy:
    """A method by name; `gsearch`/`psigmoid` read their searched plans from the results folder."""
    if name == "full":
        return Policy()
    if name in ("gsearch", "psigmoid"):
        query, source = hp.get("query", "last"), hp.get("source", SEARCH_SOURCE)
        saved = results.load_json(search_name(name, query, source, budget, kind))
        if saved is None:
            raise FileNotFoundError(f"no saved {name} plan for budget {budget} ({kind}); run `vtr search {name}` first")
        return PlanPolicy(Plan(tuple(saved["plan"]), saved["n_vision"]), query=query, source=source)
    factory = methods.get(name)
    check_hyperparameters(name, factory, hp)
    kwargs = dict(hp)
    if name in ("random", "dyvte"):
        kwargs["seed"] = seed
    return factory(info_for(runner, split), budget=budget, kind=kind, **kwargs)


def check_hyperparameters(name: str, factory, hp: dict) -> None:
    """Refuse a hyper-parameter the method does not take, or a text value where it takes a number,
    naming the accepted ones (before any work, instead of a TypeError deep in the method)."""
    import inspect

    from .errors import InputError

    params = {k: v for k, v in inspect.signature(factory).parameters.items()
              if k not in ("info", "budget", "kind", "seed")}
    for key, value in hp.items():
        if key not in params:
            raise InputError(f"method {name} has no hyper-parameter {key!r}; it takes: {', '.join(params) or 'none'}")
        default = params[key].default
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            raise InputError(f"method {name}: hyper-parameter {key}={value!r} must be a number")


@torch.inference_mode()
def speedup(runner, split, policy: Policy, batch: int = 32, repeats: int = 3) -> float:
    """Unpruned / pruned prefill time on one batch: medians of `repeats` interleaved rounds after a
    warm-up round (a table column; chapter 8 and `vtr bench` measure with more rounds)."""
    inputs = runner.inputs(split.samples[:batch], split)
    base, pruned = [], []
    for i in range(repeats + 1):
        for p, sink in ((Policy(), base), (policy, pruned)):
            with prune(runner.model, p):
                t0 = time.perf_counter()
                runner.model(**inputs, use_cache=False, logits_to_keep=1)
                if i:  # first round is warm-up
                    sink.append(time.perf_counter() - t0)
    return statistics.median(base) / statistics.median(pruned)


def eval_method(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0,
                experiment: str = "methods", split_name: str = "test", measure_speed: bool = True,
                progress: bool = True, **hp) -> dict:
    """Evaluate one method at one budget; resumable; appends the summary record to the store."""
    from . import distributed

    policy = policy_for(runner, split, name, budget, kind, seed, **hp)
    bench = getattr(runner, "bench", None)
    tag = run_tag(runner.name, bench, experiment, name, budget, kind, split_name, len(split), seed, hp)
    stamp = run_fingerprint(runner, split, name, budget, kind, seed, hp, policy)
    if distributed.active():  # torchrun: sharded over ranks
        summary = distributed.evaluate(runner, split, policy, out=_run_dir() / f"{tag}.jsonl", progress=progress,
                                       batch_size=getattr(runner, "batch_size", 64), fingerprint=stamp)
    else:
        summary = evaluate(runner, split, policy, out=_run_dir() / f"{tag}.jsonl", progress=progress,
                           fingerprint=stamp,
                           batch_size=getattr(runner, "batch_size", 64),
                           # a process evaluates many methods on the same images only in the book (testbed);
                           # on a real model one `vtr eval` sees each batch once: no memo held on its GPU
                           features=features_for(runner) if runner.name in TESTBEDS else None)
    m = summary["metrics"]
    rec = {"experiment": experiment, "method": name, "budget": budget, "kind": kind, "model": runner.name,
           "split": split_name, "seed": seed, "hyperparameters": hp, "overall": headline(m),
           "families": m.get("families"), "exist_f1": m.get("exist_f1"), "n": summary["n"],
           "flops_ratio": summary["flops_ratio"], "keep_rate": summary["keep_rate"],
           "mean_tokens": summary["mean_tokens"], "vision_per_layer": summary["vision_per_layer"]}
    if "overall" not in m:  # a real benchmark: keep its official metrics whole
        rec.update(bench=bench, metrics=m)
    if not distributed.is_main():
        return rec  # rank 0 measures the speed and writes the store
    if measure_speed:
        rec["speedup"] = speedup(runner, split, policy, batch=8 if smoke() else 32, repeats=1 if smoke() else 3)
    return results.append(rec)


def run_tag(model: str, bench: str | None, experiment: str, name: str, budget, kind: str, split_name: str,
            n: int, seed: int, hp: dict) -> str:
    """File name (without .jsonl) of an evaluation's per-sample run file. The unpruned model's run is
    shared by all experiments (it is the same computation); real models/benchmarks also carry the
    model and benchmark names, the other testbeds their own name."""
    prefix = () if model == "testbed" else (model,) if model in TESTBEDS else (model, bench)
    experiment = "shared" if name == "full" and not hp else experiment
    return "_".join(str(x) for x in (*prefix, experiment, name, budget, kind, split_name, n, seed,
                                     *sorted(f"{k}={v}" for k, v in hp.items())))


def headline(metrics: dict) -> float | None:
    """The one number of a metrics dict: testbed "overall", a benchmark's "accuracy" (POPE: mean over
    its splits), or MME's "total" (perception + cognition score)."""
    for key in ("overall", "accuracy", "total"):
        if key in metrics:
            return metrics[key]
    return None
