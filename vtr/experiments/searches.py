"""The searches as experiments: G-Search and P-Sigmoid scored on a model's validation questions,
resumable from their traces and saved once in the results folder, where `policy_for` (the book,
`vtr eval --method gsearch|psigmoid` and the lmms-eval model) reads their plans.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import fingerprint as fp
from ..engine import PlanPolicy
from ..evaluation import evaluate
from ..evaluation.run_files import run_dir
from ..paths import results_dir
from ..plan import Plan
from . import store
from .metrics import primary
from .sizes import size


def info_for(runner, split):
    from .. import methods

    return methods.model_info(runner.model, runner.n_vision, runner.n_text(split))


# The score source of the searched plans: the main paper ranks each layer's tokens by the attention
# of the previous layer (as FastV does); "current" (PyramidDrop's rule) is the alternative reported.
SEARCH_SOURCE = "previous"

def val_scorer(runner, split, query: str = "last", batch_size: int = 100, source: str = SEARCH_SOURCE):
    """score(plan) = overall accuracy of the split under PlanPolicy(plan, query, source). Its
    `fingerprint` (model and weights, split, limit and samples, query, source, code version) goes
    into a search trace's header, so a trace is resumed only by a search with the same scorer."""
    def score(plan: Plan) -> float:
        return primary(evaluate(runner, split, PlanPolicy(plan, query=query, source=source),
                                 batch_size=batch_size, progress=False,
                                 features=runner.feature_cache())["metrics"])
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
    from ..benchmarks.suite import Suite

    if isinstance(first, Suite):  # its samples find their images through their benchmark's split
        out = Suite(first.folder, list(first.samples) + list(second.samples), {**second.parts, **first.parts})
    else:
        samples = list(first.samples) + [replace(s, image=str(second.folder / s.image))
                                         for s in second.samples]
        out = Split(first.folder, samples)
    out.limit = None if first.limit is None and second.limit is None else len(out.samples)
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
        evaluate(runner, part, PlanPolicy(plan, query=query, source=source), batch_size=batch_size,
                 progress=False, features=runner.feature_cache(),
                 on_batch=lambda recs: preds.update((r["id"], r["pred"]) for r in recs))
        return np.array([preds[s.id] == s.answer for s in part.samples], dtype=float)

    reference = {}

    def score(plan: Plan) -> float:
        full = Plan.full(plan.n_layers, plan.n_vision)
        if "answers" not in reference:
            reference["answers"] = correct(full, 0, n)
        if plan == full:
            score.last_meta = {"questions": n}
            return float(reference["answers"].mean())
        d = sequential_difference(reference["answers"], lambda lo, hi: correct(plan, lo, hi), tolerance,
                                  looks, alpha)
        score.last_meta = {"questions": d.questions, "settled": d.settled}
        return d.score
    score.name = "val_accuracy_sequential"
    score.last_meta = {}
    score.fingerprint = {**fp.model_fingerprint(runner), **fp.split_fingerprint(both), "query": query,
                         "source": source, "code": fp.code_version(), "looks": list(looks), "alpha": alpha,
                         "tolerance": tolerance}
    return score

def search_name(search: str, query: str, source: str, budget=None, kind: str = "keep",
                model: str = "testbed") -> str:
    """Name of a saved searched plan in the results folder (models other than the 8-layer testbed
    carry their name first, as their run files do)."""
    suffix = "" if source == SEARCH_SOURCE else f"_{source}"
    prefix = "" if model == "testbed" else f"{model}_"
    return prefix + (f"gsearch_{query}" if search == "gsearch"
                     else f"psigmoid_{kind}{budget}_{query}") + suffix

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
    saved = store.load_json(name)
    if saved is not None:
        # saved before trace files were recorded: the default
        theirs = saved.get("trace_file", shown(default))
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
    name = (search_name("gsearch", query, source, model=runner.name)
            + _variant(split, split_name, extra is not None or not whole_val))
    default = run_dir() / f"{name}_tol{tolerance}.trace.jsonl"
    trace_file = _claim_summary(name, Path(trace or default), default)
    trace = Trace(trace or default)
    scorer = (val_scorer(runner, split, query, source=source) if extra is None else
              sequential_scorer(runner, split, extra, tolerance, query, source=source))
    res = gsearch(scorer, info.n_layers, info.n_vision, tolerance,
                  start_layer=start_layer, flops_fn=lambda p: info.cost(p, "flops"), trace=trace,
                  progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "flops_ratio": res.flops_ratio,
           "keep_rate": res.plan.mean_keep_rate, "val_score": res.score, "reference": res.reference,
           "evaluations": res.evaluations, "tolerance": tolerance, "query": query, "source": source,
           "model": runner.name, "split": split_name, "limit": getattr(split, "limit", None),
           "sequential": None if extra is None else {k: scorer.fingerprint[k] for k in ("looks", "alpha")},
           "trace_file": trace_file,
           "trace": [{k: r[k] for k in ("plan", "score", "flops_ratio", "seconds", "questions", "settled")
                      if k in r}
                     for r in res.scored]}
    out["saved"] = str(store.save_json(name, out))
    out["new_evaluations"] = res.scorer_calls  # of this call (not saved: a rerun makes none)
    return out

def run_psigmoid(runner, split, budget: float, kind: str = "keep", init_plan: Plan | None = None,
                 query: str = "last", n_iter: int | None = None, seed: int = 0, progress: bool = True,
                 source: str = SEARCH_SOURCE, split_name: str = "val", trace: Path | None = None) -> dict:
    """P-Sigmoid + Bayesian optimisation at `budget`; resumable and saved like `run_gsearch`."""
    from ..search import Trace, psigmoid_search

    info = info_for(runner, split)
    n_iter = n_iter or size("bo_iterations")
    name = (search_name("psigmoid", query, source, budget, kind, model=runner.name)
            + _variant(split, split_name))
    default = run_dir() / f"{name}_s{seed}.trace.jsonl"
    trace_file = _claim_summary(name, Path(trace or default), default)
    trace = Trace(trace or default)
    scorer = val_scorer(runner, split, query, source=source)
    res = psigmoid_search(scorer, info.n_layers, info.n_vision, budget, kind=kind,
                          init=init_plan, n_iter=n_iter, seed=seed, trace=trace,
                          flops_fn=lambda p: info.cost(p, "flops"), progress=progress)
    out = {"plan": list(res.plan.keep), "n_vision": info.n_vision, "params": res.params.__dict__,
           "flops_ratio": res.flops_ratio, "keep_rate": res.plan.mean_keep_rate, "val_score": res.score,
           "evaluations": res.evaluations, "budget": budget, "kind": kind,
           "budget_achieved": res.budget_achieved,
           "query": query, "source": source, "model": runner.name, "split": split_name,
           "limit": getattr(split, "limit", None), "trace_file": trace_file,
           "history": [{k: v for k, v in h.items() if k in ("score", "plan", "params")}
                       if isinstance(h, dict) else h
                       for h in res.history]}
    out["saved"] = str(store.save_json(name, out))
    out["new_evaluations"] = res.scorer_calls
    return out
