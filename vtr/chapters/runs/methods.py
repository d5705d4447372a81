"""The book's results comparing methods (part of `vtr.chapters.runs`, which re-exports them):
G-Search and P-Sigmoid (chapters 4 and 5), the methods and field tables with their timings, the
score sources, CLS knee (chapter 6), DyVTE (chapter 7), and paired differences of stored records.
The shared helpers and every result are reached through `runs` (`R.first_model()`, `R.gsearch()`),
so that one replaced there is the one every caller sees.
"""
from __future__ import annotations

import json

import numpy as np

from ... import analysis
from ...experiments import evaluations, policies, runners, searches, store
from ...experiments.metrics import per_question
from ...experiments.sizes import size
from ...plan import Plan
from .. import runs as R


# ------------------------------------------------------------------ chapter 4: G-Search
def gsearch_queries(model: str | None = None) -> tuple[str, ...]:
    """Queries G-Search runs with: both on the 8-layer testbed (chapter 4 compares them), the main
    one (the last prompt token) on the deeper testbed, whose search costs twice as much per layer."""
    model = model or R.first_model()
    return ("last", "text_mean") if model == R.first_model() else ("last",)


def gsearch(model: str | None = None) -> dict:
    """{query: {"search": the saved search, "test": its test record}, "full": the unpruned record}.
    The search is saved once (`searches.run_gsearch`); this result names it."""
    model = model or R.first_model()

    def compute():
        runner, val = runners.get("val", model)
        _, test = runners.get("test", model)
        _, extra = runners.get("val-extra", model)
        out = {}
        for query in R.gsearch_queries(model):
            g = searches.run_gsearch(runner, val, R.TOLERANCE, query=query, progress=False, extra=extra)
            # timed with the methods table's interleaved run (`methods_speed`), not here
            rec = evaluations.eval_method(runner, test, "gsearch", None, experiment="gsearch", query=query,
                                          progress=False, measure_speed=False)
            out[query] = {"search": _saved_name(g), "test": rec}
        out["full"] = evaluations.eval_method(runner, test, "full", None, experiment="gsearch",
                                              progress=False, measure_speed=False)
        return out
    saved = R.cached(R.named("gsearch", model), compute)
    return {k: {**v, "search": store.load_json(v["search"])} if k != "full" and isinstance(v, dict) else v
            for k, v in saved.items()}


def _saved_name(search: dict) -> str:
    """The results-folder name of a saved search (`searches.run_gsearch` / `run_psigmoid`)."""
    from pathlib import Path

    return Path(search["saved"]).stem


# ----------------------------------------------------------------- chapter 5: P-Sigmoid and the methods table
def psigmoid(budget: float, query: str = "last", model: str | None = None) -> dict:
    """The P-Sigmoid search at `budget` (mean keep rate), started from G-Search's plan; saved once
    by `searches.run_psigmoid`, read back from there."""
    model = model or R.first_model()
    saved = store.load_json(searches.search_name("psigmoid", query, searches.SEARCH_SOURCE, budget,
                                                      model=model))
    if saved is not None:
        return saved
    runner, val = runners.get("val", model)
    g = R.gsearch(model)[query]["search"]
    init = Plan(tuple(g["plan"]), g["n_vision"])
    return searches.run_psigmoid(runner, val, budget, init_plan=init, query=query, progress=False)


def methods_table(model: str | None = None) -> list[dict]:
    """Every method at every budget on the test split (one record each, in the results store)."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        recs = [evaluations.eval_method(runner, test, "full", None, experiment="table", progress=False,
                                        measure_speed=False)]
        for budget in R.BUDGETS:
            R.psigmoid(budget, model=model)
            for name in R.TABLE_METHODS:
                try:
                    # timed together per budget by `methods_speed`, which the tables show
                    recs.append(evaluations.eval_method(runner, test, name, budget, experiment="table",
                                                        progress=False, measure_speed=False))
                except ValueError as e:  # an infeasible budget is reported, not hidden
                    recs.append({"method": name, "budget": budget, "error": str(e)})
        return {"records": recs}
    return R.cached(R.named("methods_table", model), compute)["records"]


def methods_speed(model: str | None = None) -> dict:
    """Prefill speedup of every method of the table, timed together at each budget: one interleaved
    run per budget (every round times the unpruned model and then each method on the same batch),
    so the methods of one table row group are measured under the same machine load, with the
    range of their paired per-round ratios (`vtr.timing.prefill_policies`). G-Search's plan is timed
    in a run of its own, under "searched". A policy timed before in this build is not timed again
    (`timed_rows`)."""
    model = model or R.first_model()

    def compute():
        from ...plan import PlanError

        runner, test = runners.get("test", model)
        inputs = runner.inputs(test.samples[:size("speed_batch")], test)
        # a method the model cannot run (encoder-side reduction on LLaVA-NeXT's crops): its table
        # record says why, and it is not timed
        failed = {(r["method"], r["budget"]) for r in R.methods_table(model) if "error" in r}
        out = {}
        for budget in R.BUDGETS:
            R.psigmoid(budget, model=model)  # its plan is read from the saved search: make sure it exists
            chosen = {}
            for name in R.TABLE_METHODS:
                if (name, budget) in failed:
                    continue
                try:
                    chosen[name] = policies.policy_for(runner, test, name, budget)
                except (PlanError, ValueError):  # infeasible at this budget: the table says why
                    continue
            out[str(budget)] = R.timed_rows(runner, inputs, chosen, model, f"methods {budget:g}")
        R.gsearch(model)  # G-Search's plan (no budget: it finds its own), timed the same way
        searched = {"gsearch": policies.policy_for(runner, test, "gsearch", None)}
        out["searched"] = R.timed_rows(runner, inputs, searched, model, "searched")
        return {"budgets": out, "batch": size("speed_batch")}
    return R.cached(R.named("methods_speed", model), compute)


def _field_psigmoid(budget: float, model: str):
    """P-Sigmoid's search at a field budget, or None where no plan meets it (the table says so)."""
    model = model or R.first_model()
    try:
        return R.psigmoid(budget, model=model)
    except ValueError:
        return None


def field_table(model: str | None = None) -> dict:
    """The methods at the field's budgets, on test, two ways:

    - "keep": every method of the table at the mean keep rates of SparseVLM's tables
      (`FIELD_BUDGETS`: 192 / 128 / 64 of 576 tokens per layer);
    - "matched": at matched decoder FLOPs: every method set (budget kind "flops") to the decoder
      FLOPs P-Sigmoid's plan at that keep rate is predicted to cost (`targets`), so no method is
      ahead by spending its tokens where they are cheaper; P-Sigmoid's own row is its plan at the
      keep rate, whose FLOPs the target is.

    Each record carries `field` (the keep rate of its row group). A method that cannot meet a
    budget has a record with its `error`. P-Sigmoid's targets come from its search on val, never
    from test."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        full = evaluations.eval_method(runner, test, "full", None, experiment="table", progress=False,
                                       measure_speed=False)
        keep, matched, targets = [full], [full], {}

        def run(name, budget, kind, field):
            try:
                rec = evaluations.eval_method(runner, test, name, budget, kind=kind, experiment="field",
                                              progress=False, measure_speed=False)
            except ValueError as e:  # an infeasible budget is reported, not hidden
                rec = {"method": name, "budget": budget, "kind": kind, "error": str(e)}
            return {**rec, "field": field}

        for field in R.FIELD_BUDGETS:
            searched = _field_psigmoid(field, model)
            for name in R.TABLE_METHODS:
                keep.append(run(name, field, "keep", field) if name != "psigmoid" or searched else
                            {"method": name, "budget": field, "kind": "keep", "field": field,
                             "error": "no P-Sigmoid plan meets this budget"})
            target = None if searched is None else float(searched["flops_ratio"])
            targets[str(field)] = target
            for name in R.TABLE_METHODS:
                if target is None:
                    matched.append({"method": name, "budget": None, "kind": "flops", "field": field,
                                    "error": "no P-Sigmoid plan at this keep rate to match"})
                elif name == "psigmoid":
                    matched.append(next(r for r in keep if r["method"] == "psigmoid" and r["field"] == field))
                else:
                    matched.append(run(name, target, "flops", field))
        return {"keep": keep, "matched": matched, "targets": targets}
    return R.cached(R.named("field_table", model), compute)


def field_speed(model: str | None = None) -> dict:
    """Prefill speedup of every row of `field_table`, one interleaved run per row group (as
    `methods_speed`), keyed "keep <budget>" and "matched <budget>" (`field_group`). A policy the
    methods table or an earlier group timed is not timed again (`timed_rows`)."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        table = R.field_table(model)
        inputs = runner.inputs(test.samples[:size("speed_batch")], test)
        out = {}
        for way in ("keep", "matched"):
            for field in R.FIELD_BUDGETS:
                rows = [r for r in table[way] if r.get("field") == field and "error" not in r]
                chosen = {r["method"]: policies.policy_for(runner, test, r["method"], r["budget"], r["kind"])
                            for r in rows}
                if chosen:
                    group = R.field_group(way, field)
                    out[group] = R.timed_rows(runner, inputs, chosen, model, group)
        return {"groups": out, "batch": size("speed_batch")}
    return R.cached(R.named("field_speed", model), compute)


def field_group(way: str, field: float) -> str:
    """Name of a row group of the field tables: "keep 0.333333", "matched 0.111111"."""
    return f"{way} {field:g}"


# ------------------------------------------------------------------ stored records, per question
def stored_record(experiment: str, method: str, budget, kind: str = "keep", seed: int = 0,
                  model: str | None = None) -> dict:
    """The latest summary record of an evaluation in the results store (a testbed's test split)."""
    model = model or R.first_model()
    found = store.find(store.load(experiment=experiment), method=method, budget=budget, kind=kind, seed=seed,
                         model=model, split="test")
    if not found:
        raise FileNotFoundError(f"no record of {method} at {budget} ({kind}) in experiment {experiment!r}: "
                                f"evaluate it first")
    return found[-1]


def correct(record: dict, families=None) -> np.ndarray:
    """Per-question correctness (test split, in its order; only the questions of `families` if
    given) of the evaluation behind a summary record, read from the run file the record names."""
    from ...evaluation import read_run
    from ...paths import results_dir

    _, split = runners.get("test", record.get("model") or R.first_model())
    preds = {sid: r["pred"] for sid, r in read_run(results_dir() / record["run_file"]).items()}
    keep = [s for s in split.samples if families is None or s.family in families]
    return np.array(per_question(keep, [preds[s.id] for s in keep]), dtype=float)


def per_sample_correct(experiment: str, method: str, budget, kind: str = "keep", seed: int = 0,
                       model: str | None = None) -> np.ndarray:
    """`correct` of a stored evaluation (for bootstrap intervals)."""
    model = model or R.first_model()
    return R.correct(R.stored_record(experiment, method, budget, kind, seed, model))


# ------------------------------------------------------------------ chapter 4: which layer scores
def score_sources() -> dict:
    """The same plans scored from the previous layer's attention and from the current layer's q/k,
    on test: G-Search's plan, FastV and PyramidDrop at every budget. A method's default source is
    its table record; the other source is evaluated here (experiment "sources")."""
    from ...scores import SCORE_SOURCES

    def compute():
        runner, test = runners.get("test")
        rows = []
        for method, budgets, default in (("gsearch", (None,), searches.SEARCH_SOURCE),
                                         ("fastv", R.BUDGETS, "previous"), ("pdrop", R.BUDGETS, "current")):
            for budget in budgets:
                recs = {}
                if method == "gsearch":
                    recs[default] = R.gsearch()["last"]["test"]  # the record the other chapters use
                else:
                    recs[default] = next(r for r in R.methods_table() if r.get("method") == method
                                         and r.get("budget") == budget)
                    if "error" in recs[default]:  # infeasible at this budget: the methods table says why
                        continue
                for source in SCORE_SOURCES:
                    if source in recs:
                        continue
                    hp = {"source": source, **({"query": "last"} if method == "gsearch" else {})}
                    recs[source] = evaluations.eval_method(runner, test, method, budget, experiment="sources",
                                                           measure_speed=False, progress=False, **hp)
                diff = analysis.paired_bootstrap(R.correct(recs["previous"]), R.correct(recs["current"]))
                rows.append({"method": method, "budget": budget, "default": default,
                             "previous": recs["previous"]["overall"], "current": recs["current"]["overall"],
                             "keep_rate": recs[default]["keep_rate"], "difference": diff})
        return {"rows": rows}
    return R.cached("score_sources", compute)["rows"]


# ------------------------------------------------------------------ chapter 6: CLS similarity / knee
CLS_SHARE = 0.22  # the CLS-knee paper's average share of kept tokens


def cls_knee(model: str | None = None) -> dict:
    """CLS-similarity curves on val and the CLS-knee method on test (two stages, stage 1 alone, every
    knee detector, stage 1 at the paper's share). A model whose vision tokens are not one image's
    patch tokens (LLaVA-NeXT's crops) gives {"unsupported": the reason} instead."""
    model = model or R.first_model()

    def compute():
        from ...engine import UnsupportedInput
        from ...methods.cls_knee import DETECTORS

        runner, test = runners.get("test", model)
        _, val = runners.get("val", model)
        try:
            curves = analysis.cls_curves(runner, val.subset(size("cls_questions")))
        except UnsupportedInput as err:
            return {"unsupported": str(err)}
        srt = -np.sort(-curves, axis=1)
        knees = {name: [int(det(row)) for row in srt] for name, det in DETECTORS.items()}
        # accuracy and keep rates only: the chapter shows no speed for these
        quiet = {"progress": False, "measure_speed": False}
        two = evaluations.eval_method(runner, test, "cls_knee", None, experiment="cls_knee", **quiet)
        one = evaluations.eval_method(runner, test, "cls_knee", None, experiment="cls_knee", stage2=0,
                                      **quiet)
        # the other knee detectors, and stage 1 fixed at the paper's 22% (the top round(0.22 N) by
        # CLS similarity in every image: min_keep = cap = that count), both stages as above
        detectors = {name: evaluations.eval_method(runner, test, "cls_knee", None, experiment="cls_knee",
                                                   detector=name, **quiet)
                     for name in DETECTORS if name != "kneedle"}
        fixed = round(CLS_SHARE * runner.n_vision)
        at_share = evaluations.eval_method(runner, test, "cls_knee", CLS_SHARE, experiment="cls_knee",
                                           min_keep=fixed, **quiet)
        return {"sorted_curves": srt[:50].tolist(), "mean_curve": srt.mean(0).tolist(),
                "knees": knees, "two_stage": two, "stage1_only": one, "detectors": detectors,
                "at_share": at_share, "share": CLS_SHARE}
    return R.cached(R.named("cls_knee", model), compute)


# ------------------------------------------------------------------ chapter 7: DyVTE
def routers_path(seed: int, model: str | None = None):
    """The book's routers live with its results (stamped by code and weights): routers trained for
    another checkpoint, or on the smoke build's 96 questions, are never picked up by a full build."""
    model = model or R.first_model()
    from ...paths import results_dir

    return results_dir() / f"{R.named('dyvte_routers', model)}_seed{seed}.safetensors"


def dyvte_routers(seed: int, model: str | None = None) -> dict:
    """Train (or load) the routers of one seed. Routers saved by another configuration (model,
    weights, seed, questions, code: `dyvte_train.fingerprint`) are refused, naming what differs."""
    model = model or R.first_model()
    from ... import fingerprint as fp
    from ...journal import write_atomic
    from ...methods import dyvte_train

    path = R.routers_path(seed, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    info_path = path.with_suffix(".json")
    runner, _ = runners.get("val", model)
    questions = runners.train_questions(seed)
    stamp = dyvte_train.fingerprint(runner, questions, seed)
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        fp.check(info.get("fingerprint", {}), stamp, str(info_path), fresh=f"delete {path} and {info_path}")
        return info
    info = dyvte_train.train(runner, questions, seed=seed, out=path, progress=False)
    write_atomic(info_path, json.dumps(info))  # written last: the routers file is complete by then
    return info


def dyvte(model: str | None = None) -> dict:
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        seeds = size("router_seeds")
        out = {"seeds": {}}
        for seed in seeds:
            info = R.dyvte_routers(seed, model)
            rec = evaluations.eval_method(runner, test, "dyvte", None, experiment="dyvte", seed=seed,
                                         routers=str(R.routers_path(seed, model)), progress=False)
            out["seeds"][seed] = {"train": info, "test": rec}
        out["full"] = evaluations.eval_method(runner, test, "full", None, experiment="dyvte", progress=False,
                                              measure_speed=False)
        # VTW and FastV at the cost DyVTE chose (seed 0), and FastV + DyVTE
        cost = out["seeds"][seeds[0]]["test"]["keep_rate"]
        L = runner.model.config.get_text_config().num_hidden_layers
        k = max(1, round(cost * L))
        out["vtw"] = evaluations.eval_method(runner, test, "vtw", None, experiment="dyvte", K=k,
                                             progress=False)
        out["fastv"] = evaluations.eval_method(runner, test, "fastv", round(cost, 3), experiment="dyvte",
                                               progress=False)
        out["fastv_dyvte"] = evaluations.eval_method(runner, test, "fastv_dyvte", 0.5, experiment="dyvte",
                                                     routers=str(R.routers_path(seeds[0], model)),
                                                     progress=False)
        return out
    return R.cached(R.named("dyvte", model), compute)


# ------------------------------------------------------------------ paired differences
def paired_difference(experiment: str, a: str, b: str, budget, kind: str = "keep",
                      model: str | None = None) -> dict:
    """Bootstrap CI of accuracy(a) - accuracy(b) on the same test questions."""
    model = model or R.first_model()
    return analysis.paired_bootstrap(R.per_sample_correct(experiment, a, budget, kind, model=model),
                                     R.per_sample_correct(experiment, b, budget, kind, model=model))


def record_difference(a, b, families=None) -> dict:
    """Paired-bootstrap 95% interval of accuracy(a) - accuracy(b) for summary records of the same
    test questions (only the questions of `families` if given). `a` or `b` may be a list of records
    (router seeds, say): their per-question correctness is averaged first."""
    def answers(recs):
        recs = recs if isinstance(recs, list) else [recs]
        return np.mean([R.correct(r, families) for r in recs], axis=0)
    return analysis.paired_bootstrap(answers(a), answers(b))
