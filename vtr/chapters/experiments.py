"""The experiments behind the book, as functions the CLI and the notebooks both call.

Everything is resumable: searches keep a JSONL trace, evaluations a per-sample JSONL run file,
and summaries are appended to the results store (`vtr.chapters.results`). Smoke mode (`VTR_SMOKE=1`)
shrinks splits and budgets so every chapter executes in CI within minutes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import fingerprint as fp
from .. import methods
from ..engine import PlanPolicy, Policy
from ..evaluation import evaluate, run_path, run_tag
from ..evaluation.records import run_dir
from ..paths import results_dir
from ..timing import prefill_speedup
from ..plan import Plan
from . import results
from .sizes import size


def limits() -> dict:
    """Split sizes (`sizes.SIZES`): full runs use all of val, val-extra and test; smoke runs use slices."""
    return {"val": size("val"), "test": size("test"), "val-extra": size("val_extra")}


_TESTBED: dict = {}  # one runner per testbed and process, so its image-feature cache serves every experiment


def testbed(split: str, model: str = "testbed"):
    """The runner of a shipped testbed (`vtr.paths.TESTBEDS`) and its split at the book's size."""
    from ..models import load, load_split

    if model not in _TESTBED:
        _TESTBED[model] = load(model)
    return _TESTBED[model], load_split(model, split, limits()[split])


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
                                 progress=False, features=runner.feature_cache())["metrics"])
    score.name = "val_accuracy"
    score.fingerprint = {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "query": query,
                         "source": source, "code": fp.code_version()}
    return score


# G-Search decides on val and, when a decision is close, on val-extra too (`vtr.search.sequential`)
SEQUENTIAL_ALPHA = 0.05


def joined(first, second):
    """One split of `first`'s samples followed by `second`'s (image paths made absolute), for the
    sequential test's looks; features are cached per image as for any split."""
    from dataclasses import replace

    from ..benchmarks.jsonl import Split

    samples = list(first.samples) + [replace(s, image=str(second.folder / s.image)) for s in second.samples]
    out = Split(first.folder, samples)
    out.limit = None if first.limit is None and second.limit is None else len(samples)
    return out


def sequential_scorer(runner, val, extra, tolerance: float, query: str = "last", batch_size: int = 100,
                      source: str = SEARCH_SOURCE, alpha: float = SEQUENTIAL_ALPHA):
    """score(plan) for G-Search by the paired sequential test of `vtr.search.sequential`: looks at
    len(val), halfway into `extra`, and all of val + extra. The unpruned model answers every
    question once; a plan answers only the looks its decision needs (`last_meta` says how many,
    and the trace keeps it)."""
    from ..search.sequential import sequential_difference

    both = joined(val, extra)
    n = len(both)
    looks = tuple(sorted({len(val), len(val) + len(extra) // 2, n}))

    def correct(plan, lo, hi):
        part = both.subset(hi)
        part.samples = part.samples[lo:hi]
        preds = {}
        evaluate(runner, part, PlanPolicy(plan, query=query, source=source), batch_size=batch_size, progress=False,
                 features=runner.feature_cache(), on_batch=lambda recs: preds.update((r["id"], r["pred"]) for r in recs))
        return np.array([preds[s.id] == s.answer for s in part.samples], dtype=float)

    reference = {}

    def score(plan: Plan) -> float:
        full = Plan.full(plan.n_layers, plan.n_vision)
        if "answers" not in reference:
            reference["answers"] = correct(full, 0, n)
        if plan == full:
            score.last_meta = {"questions": n}
            return float(reference["answers"].mean())
        d = sequential_difference(reference["answers"], lambda lo, hi: correct(plan, lo, hi), tolerance, looks, alpha)
        score.last_meta = {"questions": d.questions, "settled": d.settled}
        return d.score
    score.name = "val_accuracy_sequential"
    score.last_meta = {}
    score.fingerprint = {**fp.model_fingerprint(runner), **fp.split_fingerprint(both), "query": query,
                         "source": source, "code": fp.code_version(), "looks": list(looks), "alpha": alpha,
                         "tolerance": tolerance}
    return score


def search_name(search: str, query: str, source: str, budget=None, kind: str = "keep", model: str = "testbed") -> str:
    """Name of a saved searched plan in the results folder (models other than the 8-layer testbed
    carry their name first, as their run files do)."""
    suffix = "" if source == SEARCH_SOURCE else f"_{source}"
    prefix = "" if model == "testbed" else f"{model}_"
    return prefix + (f"gsearch_{query}" if search == "gsearch" else f"psigmoid_{kind}{budget}_{query}") + suffix


def run_fingerprint(runner, split, name: str, budget, kind: str, seed: int, hp: dict, policy: Policy) -> dict:
    """What an evaluation's run file must have been made by to be resumed (`vtr.fingerprint`)."""
    plan = getattr(policy, "plan", None)
    return {**fp.model_fingerprint(runner), **fp.split_fingerprint(split), "benchmark": runner.benchmark,
            "method": name, "budget": budget, "kind": kind, "seed": seed, "hyperparameters": hp,
            "plan": None if plan is None else list(plan.keep), "code": fp.code_version()}


def _variant(split, split_name: str, sequential: bool = True) -> str:
    """Name suffix of a search on anything but the book's whole validation split (so that a quick
    `vtr search --limit 24` never takes the place of the plan the book and `vtr eval` read), and of
    a G-Search decided on val alone (`_fixed`) rather than by the sequential test."""
    limit = getattr(split, "limit", None)
    book = size(split_name) if split_name in ("val", "test") else None
    return (("" if split_name == "val" else f"_{split_name}") + ("" if limit == book else f"_n{limit}")
            + ("" if sequential else "_fixed"))


def _claim_summary(name: str, trace: Path, default: Path) -> str:
    """The trace file a search saved as `name` records, after checking that saving would not replace
    another search's result: a saved search is replaced only by a run of the same trace (a resumed
    or repeated run), so a search with other settings traced elsewhere (`--out`) never silently takes
    the place of the plan the book and `vtr eval` read. Checked before any work."""
    from ..errors import InputError

    def shown(path: Path) -> str:  # relative to the results folder when inside it (the folder may move)
        path = path.resolve()
        root = results_dir().resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    mine = shown(trace)
    saved = results.load_json(name)
    if saved is not None:
        theirs = saved.get("trace_file", shown(default))  # saved before trace files were recorded: the default
        if theirs != mine:
            file, where = results_dir() / f"{name}.json", results_dir() / theirs  # absolute stays absolute
            raise InputError(f"{file} holds the search traced in {where}, not in {trace}: resume that search "
                             f"(--out {where}) or remove {file} to save this one in its place")
    return mine


def run_gsearch(runner, split, tolerance: float = 0.005, query: str = "last", start_layer: int = 1,
                progress: bool = True, source: str = SEARCH_SOURCE, split_name: str = "val",
                trace: Path | None = None, extra=None) -> dict:
    """G-Search of `runner` on `split`, resumable from its trace (default: beside the run files). The
    result is saved once, as `search_name(...)` in the results folder, where `policy_for` (the book
    and `vtr eval --method gsearch`) reads its plan; `"saved"` names the file. With `extra` (more
    validation questions: the book's and the CLI's default on the whole val split), each decision
    is the paired sequential test of `sequential_scorer`; without, accuracy on `split` alone decides
    (saved with a `_fixed` suffix when `split` is the whole val split)."""
    from ..search import Trace, gsearch

    info = info_for(runner, split)
    whole_val = split_name == "val" and getattr(split, "limit", None) == size("val")
    name = search_name("gsearch", query, source, model=runner.name) + _variant(split, split_name,
                                                                               extra is not None or not whole_val)
    default = run_dir() / f"{name}_tol{tolerance}.trace.jsonl"
    trace_file = _claim_summary(name, Path(trace or default), default)
    trace = Trace(trace or default)
    scorer = (val_scorer(runner, split, query, source=source) if extra is None else
              sequential_scorer(runner, split, extra, tolerance, query, source=source))
    res = gsearch(scorer, info.n_layers, info.n_vision, tolerance,
                  start_layer=start_layer, flops_fn=lambda p: info.cost(p, "flops"), trace=trace, progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "flops_ratio": res.flops_ratio,
           "keep_rate": res.plan.mean_keep_rate, "val_score": res.score, "reference": res.reference,
           "evaluations": res.evaluations, "tolerance": tolerance, "query": query, "source": source,
           "model": runner.name, "split": split_name, "limit": getattr(split, "limit", None),
           "sequential": None if extra is None else {k: scorer.fingerprint[k] for k in ("looks", "alpha")},
           "trace_file": trace_file,
           "trace": [{k: r[k] for k in ("plan", "score", "flops_ratio", "seconds", "questions", "settled") if k in r}
                     for r in res.records]}
    out["saved"] = str(results.save_json(name, out))
    out["new_evaluations"] = res.scorer_calls  # of this call (not saved: a rerun makes none)
    return out


def run_psigmoid(runner, split, budget: float, kind: str = "keep", init_plan: Plan | None = None,
                 query: str = "last", n_iter: int | None = None, seed: int = 0, progress: bool = True,
                 source: str = SEARCH_SOURCE, split_name: str = "val", trace: Path | None = None) -> dict:
    """P-Sigmoid + Bayesian optimisation at `budget`; resumable and saved like `run_gsearch`."""
    from ..search import Trace, psigmoid_search

    info = info_for(runner, split)
    n_iter = n_iter or size("bo_iterations")
    name = search_name("psigmoid", query, source, budget, kind, model=runner.name) + _variant(split, split_name)
    default = run_dir() / f"{name}_s{seed}.trace.jsonl"
    trace_file = _claim_summary(name, Path(trace or default), default)
    trace = Trace(trace or default)
    res = psigmoid_search(val_scorer(runner, split, query, source=source), info.n_layers, info.n_vision, budget,
                          kind=kind,
                          init=init_plan, n_iter=n_iter, seed=seed, trace=trace,
                          flops_fn=lambda p: info.cost(p, "flops"), progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "params": res.params.__dict__,
           "flops_ratio": res.flops_ratio, "keep_rate": res.plan.mean_keep_rate, "val_score": res.score,
           "evaluations": res.evaluations, "budget": budget, "kind": kind, "budget_achieved": res.budget_achieved,
           "query": query, "source": source, "model": runner.name, "split": split_name,
           "limit": getattr(split, "limit", None), "trace_file": trace_file,
           "history": [{k: v for k, v in h.items() if k in ("score", "plan", "params")} if isinstance(h, dict) else h
                       for h in res.history]}
    out["saved"] = str(results.save_json(name, out))
    out["new_evaluations"] = res.scorer_calls
    return out


def policy_for(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0, **hp) -> Policy:
    """A method by name; `gsearch`/`psigmoid` read their searched plans from the results folder."""
    if name == "full":
        return Policy()
    if name in ("gsearch", "psigmoid"):
        # `source`: how the plan's layers score tokens; `search_source`: which search's plan (the
        # search scored with its own source; by default the plan of the main search, so that
        # `source=current` alone scores the same plan the other way)
        query, source = hp.get("query", "last"), hp.get("source", SEARCH_SOURCE)
        searched = hp.get("search_source", SEARCH_SOURCE)
        saved = results.load_json(search_name(name, query, searched, budget, kind, model=runner.name))
        if saved is None:
            raise FileNotFoundError(f"no saved {name} plan for budget {budget} ({kind}, searched with {searched} "
                                    f"scores); run `vtr search {name}` first")
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

    from ..errors import InputError

    params = {k: v for k, v in inspect.signature(factory).parameters.items()
              if k not in ("info", "budget", "kind", "seed")}
    for key, value in hp.items():
        if key not in params:
            raise InputError(f"method {name} has no hyper-parameter {key!r}; it takes: {', '.join(params) or 'none'}")
        default = params[key].default
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            raise InputError(f"method {name}: hyper-parameter {key}={value!r} must be a number")


def eval_method(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0,
                experiment: str = "methods", split_name: str = "test", measure_speed: bool = True,
                progress: bool = True, **hp) -> dict:
    """Evaluate one method at one budget; resumable; appends the summary record to the store."""
    from ..evaluation import distributed

    policy = policy_for(runner, split, name, budget, kind, seed, **hp)
    out = run_path(run_tag(runner.name, runner.benchmark, experiment, name, budget, kind, split_name, len(split),
                           seed, hp))
    stamp = run_fingerprint(runner, split, name, budget, kind, seed, hp, policy)
    if distributed.active():  # torchrun: sharded over ranks
        summary = distributed.evaluate(runner, split, policy, out=out, progress=progress,
                                       batch_size=runner.batch_size, fingerprint=stamp)
    else:
        summary = evaluate(runner, split, policy, out=out, progress=progress, fingerprint=stamp,
                           batch_size=runner.batch_size,
                           features=runner.feature_cache() if runner.shares_images else None)
    m = summary["metrics"]
    rec = {"experiment": experiment, "method": name, "budget": budget, "kind": kind, "model": runner.name,
           "split": split_name, "seed": seed, "hyperparameters": hp, "overall": headline(m),
           "families": m.get("families"), "exist_f1": m.get("exist_f1"), "n": summary["n"],
           "flops_ratio": summary["flops_ratio"], "keep_rate": summary["keep_rate"],
           "mean_tokens": summary["mean_tokens"], "vision_per_layer": summary["vision_per_layer"],
           "run_file": str(out.relative_to(results_dir()))}
    if "overall" not in m:  # a real benchmark: keep its official metrics whole
        rec.update(benchmark=runner.benchmark, metrics=m)
    if not distributed.is_main():
        return rec  # rank 0 measures the speed and writes the store
    if measure_speed:
        inputs = runner.inputs(split.samples[:size("speed_batch")], split)
        rec["speedup"] = prefill_speedup(runner.model, inputs, policy, repeats=size("speed_repeats"))
    return results.append(rec)


def headline(metrics: dict) -> float | None:
    """The one number of a metrics dict: testbed "overall", a benchmark's "accuracy" (POPE: mean over
    its splits), or MME's "total" (perception + cognition score)."""
    for key in ("overall", "accuracy", "total"):
        if key in metrics:
            return metrics[key]
    return None
