"""The book's experiments on the active profile's models, each computed once and saved
(load-or-compute).

Every chapter and the introduction's headline table call these; whichever page executes first
computes a result, the others read the saved JSON. Results live in `vtr.paths.results_dir()`, one
folder per profile, whose name carries a hash of the code and weights, so nothing computed by other
code is reused. The profile (`vtr.experiments.profiles`) decides the models (`models()`), the
reported questions (one split; on a benchmark profile its families are the benchmarks) and the
questions the searches decide on; functions that only make sense on the testbed say so.
"""
from __future__ import annotations

import json
import time

import numpy as np

from .. import analysis
from ..experiments import evaluations, policies, runners, searches, store
from ..experiments.metrics import per_question
from .definitions import sparsevlm_budgets
from ..experiments.sizes import size
from ..paths import data_dir
from ..plan import Plan

BUDGETS = (0.5, 0.25, 0.125)
TABLE_METHODS = ("fastv", "pdrop", "sparsevlm", "random", "uniform", "vtw", "visionzip", "prumerge",
                 "prumerge_plus", "tome", "psigmoid")
TOLERANCE = 0.005
# the field's budgets (SparseVLM's 192 / 128 / 64 of 576 tokens per layer) as mean keep rates
FIELD_BUDGETS = sparsevlm_budgets()


def models() -> list[str]:
    """The active profile's models: on the testbed profile the two shipped testbeds (the 8-layer
    model every chapter starts from, and the 16-layer one the depth-sensitive findings are measured
    on as well); on a benchmark profile its checkpoints, in the profile file's order."""
    return runners.models()


def first_model() -> str:
    """The model the single-model analyses use (the 8-layer testbed on the testbed profile)."""
    return models()[0]


def is_testbed() -> bool:
    """True on the testbed profile: its procedural benchmark, training logs and probes exist."""
    from ..experiments import profiles

    return profiles.current().is_testbed


def named(base: str, model: str) -> str:
    """Results-folder name of a book result for `model` (the first model's names carry no suffix)."""
    model = model or first_model()
    return base if model == first_model() else f"{base}_{model}"


def n_layers(model: str | None = None) -> int:
    model = model or first_model()
    runner, _ = runners.get("val", model)
    return runner.model.config.get_text_config().num_hidden_layers


def cached(name: str, compute):
    saved = store.load_json(name)
    if saved is not None:
        return saved
    t0 = time.time()
    value = compute()
    value["_seconds"] = round(time.time() - t0, 1)
    store.save_json(name, value)
    return value


# ------------------------------------------------------------------ chapter 2: the model unpruned
def testbed_accuracy(model: str | None = None) -> dict:
    """The unpruned model on the reported questions, overall and per family (per benchmark on a
    benchmark profile), with the image and with a blank image of the same size; on the testbed also
    the answer prior (always the family's most frequent test answer)."""
    model = model or first_model()

    def compute():
        from ..evaluation import evaluate
        from ..testbed.score import with_blank

        # the unpruned run is the run file every experiment shares, and the test images' features
        # stay in its runner's cache
        runner, split = runners.get("test", model)
        real = evaluations.eval_method(runner, split, "full", None, experiment="testbed", progress=False,
                                       measure_speed=False)
        if not is_testbed():
            blank = evaluate(runner, split, batch_size=runner.batch_size, progress=False,
                             blank=True)["metrics"]
            return {**with_blank(real, blank), "prior": None}
        from ..testbed.score import accuracy
        from ..testbed.tasks import answer_space

        # what `vtr testbed eval --split test` prints
        res = accuracy(runner, split, progress=False, real=real)
        majority = {}
        for fam in answer_space():
            answers = [s.answer for s in split.samples if s.family == fam]
            if answers:
                majority[fam] = max(set(answers), key=answers.count)
        hits = {fam: [s.answer == majority[fam] for s in split.samples if s.family == fam]
                for fam in majority}
        res["prior"] = {fam: float(np.mean(h)) for fam, h in hits.items()}
        res["prior_overall"] = float(np.mean([s.answer == majority[s.family] for s in split.samples]))
        return res
    return cached(named("testbed_accuracy", model), compute)


# The testbed's accuracy target, in the trigger format.
TARGET_OVERALL, TARGET_FAMILY = 0.90, 0.80


def families_from_image(acc: dict, margin: float = 0.10) -> tuple[list[str], list[str]]:
    """(families answered from the image, the others) for a `testbed_accuracy()` result: from the
    image = more than `margin` above the family's answer prior and more than `margin` lost when the
    image is blanked. A benchmark profile has no answer prior (`prior` is None): the blank-image
    test alone decides there."""
    fams = list(acc["families"])
    prior = acc.get("prior")
    uses = [f for f in fams if (prior is None or acc["families"][f] - prior[f] > margin)
            and acc["families"][f] - acc["blank_image"]["families"][f] > margin]
    return uses, [f for f in fams if f not in uses]


def meets_target(acc: dict) -> bool:
    return acc["overall"] >= TARGET_OVERALL and min(acc["families"].values()) >= TARGET_FAMILY


def training_log(relative: str = "testbed/model/training_log.jsonl") -> list[dict]:
    """Records of a training log under the data folder (default: the shipped checkpoint's)."""
    path = data_dir() / relative
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def heldout_rows(records: list[dict]) -> list[dict]:
    """One row per held-out evaluation of a training log: step, accuracy per family, overall."""
    return [{"step": r["step"], **r["heldout"]["families"], "overall": r["heldout"]["overall"]}
            for r in records if "heldout" in r]


def target_attention() -> dict:
    """Where the trigger (and the text tokens) look, per layer, when asked about one named object
    (testbed profile only: its generator draws the object regions the probe needs)."""
    def compute():
        from ..models import load
        from ..testbed.probes import attribute_regions

        runner = load("testbed")
        split, masks = attribute_regions(size("probe_questions"))
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            out[query] = analysis.region_lift(analysis.layer_scores(runner, split, query, progress=False),
                                              masks)
        return out
    return cached("target_attention", compute)


# ------------------------------------------------------------------ chapter 3: rank consistency
def rank_consistency(model: str | None = None) -> dict:
    model = model or first_model()

    def compute():
        runner, split = runners.get("val", model)
        split = split.subset(size("rank_questions"))
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            s = analysis.layer_scores(runner, split, query, progress=False)
            taus = analysis.kendall_per_sample(s)
            n_vision = s.shape[2]
            k = n_vision // 4
            top = np.argsort(-s, axis=2, kind="stable")[:, :, :k]
            # nestedness: share of layer l+1's top-k that is also in layer l's top-k
            nested = [float(np.mean([len(set(top[i, layer + 1]) & set(top[i, layer])) / k
                                     for i in range(len(s))]))
                      for layer in range(s.shape[1] - 1)]
            out[query] = {"tau_mean": taus.mean(0).tolist(), "tau_std": taus.std(0).tolist(),
                          "per_sample_adjacent": [taus[:, layer, layer + 1].tolist()
                                                  for layer in range(s.shape[1] - 1)],
                          "overlap_k": k, "overlap": analysis.topk_overlap(s, k).tolist(), "nested": nested}
        return out
    return cached(named("rank_consistency", model), compute)


def tau_excluding_first(rc: dict, query: str = "last") -> float:
    """Mean Kendall tau over pairs of distinct layers, both >= 1 (the paper excludes layer 1), of a
    `rank_consistency` result: `vtr.testbed.history.mean_tau_without_first`, which the shipped
    checkpoints' saved taus use too."""
    from ..testbed.history import mean_tau_without_first

    return mean_tau_without_first(np.array(rc[query]["tau_mean"]))


# ------------------------------------------------------------------ chapter 4: G-Search
def gsearch_queries(model: str | None = None) -> tuple[str, ...]:
    """Queries G-Search runs with: both on the 8-layer testbed (chapter 4 compares them), the main
    one (the last prompt token) on the deeper testbed, whose search costs twice as much per layer."""
    model = model or first_model()
    return ("last", "text_mean") if model == first_model() else ("last",)


def gsearch(model: str | None = None) -> dict:
    """{query: {"search": the saved search, "test": its test record}, "full": the unpruned record}.
    The search is saved once (`searches.run_gsearch`); this result names it."""
    model = model or first_model()

    def compute():
        runner, val = runners.get("val", model)
        _, test = runners.get("test", model)
        _, extra = runners.get("val-extra", model)
        out = {}
        for query in gsearch_queries(model):
            g = searches.run_gsearch(runner, val, TOLERANCE, query=query, progress=False, extra=extra)
            # timed with the methods table's interleaved run (`methods_speed`), not here
            rec = evaluations.eval_method(runner, test, "gsearch", None, experiment="gsearch", query=query,
                                          progress=False, measure_speed=False)
            out[query] = {"search": _saved_name(g), "test": rec}
        out["full"] = evaluations.eval_method(runner, test, "full", None, experiment="gsearch",
                                              progress=False, measure_speed=False)
        return out
    saved = cached(named("gsearch", model), compute)
    return {k: {**v, "search": store.load_json(v["search"])} if k != "full" and isinstance(v, dict) else v
            for k, v in saved.items()}


def _saved_name(search: dict) -> str:
    """The results-folder name of a saved search (`searches.run_gsearch` / `run_psigmoid`)."""
    from pathlib import Path

    return Path(search["saved"]).stem


# ------------------------------------------------------------------ chapter 5: P-Sigmoid and the methods table
def psigmoid(budget: float, query: str = "last", model: str | None = None) -> dict:
    """The P-Sigmoid search at `budget` (mean keep rate), started from G-Search's plan; saved once
    by `searches.run_psigmoid`, read back from there."""
    model = model or first_model()
    saved = store.load_json(searches.search_name("psigmoid", query, searches.SEARCH_SOURCE, budget,
                                                      model=model))
    if saved is not None:
        return saved
    runner, val = runners.get("val", model)
    g = gsearch(model)[query]["search"]
    init = Plan(tuple(g["plan"]), g["n_vision"])
    return searches.run_psigmoid(runner, val, budget, init_plan=init, query=query, progress=False)


def methods_table(model: str | None = None) -> list[dict]:
    """Every method at every budget on the test split (one record each, in the results store)."""
    model = model or first_model()

    def compute():
        runner, test = runners.get("test", model)
        recs = [evaluations.eval_method(runner, test, "full", None, experiment="table", progress=False,
                                        measure_speed=False)]
        for budget in BUDGETS:
            psigmoid(budget, model=model)
            for name in TABLE_METHODS:
                try:
                    # timed together per budget by `methods_speed`, which the tables show
                    recs.append(evaluations.eval_method(runner, test, name, budget, experiment="table",
                                                        progress=False, measure_speed=False))
                except ValueError as e:  # an infeasible budget is reported, not hidden
                    recs.append({"method": name, "budget": budget, "error": str(e)})
        return {"records": recs}
    return cached(named("methods_table", model), compute)["records"]


def methods_speed(model: str | None = None) -> dict:
    """Prefill speedup of every method of the table, timed together at each budget: one interleaved
    run per budget (every round times the unpruned model and then each method on the same batch),
    so the methods of one table row group are measured under the same machine load, with the
    range of their paired per-round ratios (`vtr.timing.prefill_policies`). G-Search's plan is timed
    in a run of its own, under "searched"."""
    model = model or first_model()

    def compute():
        from .. import timing
        from ..plan import PlanError

        runner, test = runners.get("test", model)
        inputs = runner.inputs(test.samples[:size("speed_batch")], test)
        # a method the model cannot run (encoder-side reduction on LLaVA-NeXT's crops): its table
        # record says why, and it is not timed
        failed = {(r["method"], r["budget"]) for r in methods_table(model) if "error" in r}
        out = {}
        for budget in BUDGETS:
            psigmoid(budget, model=model)  # its plan is read from the saved search: make sure it exists
            chosen = {}
            for name in TABLE_METHODS:
                if (name, budget) in failed:
                    continue
                try:
                    chosen[name] = policies.policy_for(runner, test, name, budget)
                except (PlanError, ValueError):  # infeasible at this budget: the table says why
                    continue
            out[str(budget)] = timing.prefill_policies(runner.model, inputs, chosen,
                                                       repeats=size("table_speed_repeats"))
        gsearch(model)  # G-Search's plan (no budget: it finds its own), timed the same way
        out["searched"] = timing.prefill_policies(
            runner.model, inputs, {"gsearch": policies.policy_for(runner, test, "gsearch", None)},
            repeats=size("table_speed_repeats"))
        return {"budgets": out, "batch": size("speed_batch")}
    return cached(named("methods_speed", model), compute)


def _field_psigmoid(budget: float, model: str):
    """P-Sigmoid's search at a field budget, or None where no plan meets it (the table says so)."""
    model = model or first_model()
    try:
        return psigmoid(budget, model=model)
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
    model = model or first_model()

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

        for field in FIELD_BUDGETS:
            searched = _field_psigmoid(field, model)
            for name in TABLE_METHODS:
                keep.append(run(name, field, "keep", field) if name != "psigmoid" or searched else
                            {"method": name, "budget": field, "kind": "keep", "field": field,
                             "error": "no P-Sigmoid plan meets this budget"})
            target = None if searched is None else float(searched["flops_ratio"])
            targets[str(field)] = target
            for name in TABLE_METHODS:
                if target is None:
                    matched.append({"method": name, "budget": None, "kind": "flops", "field": field,
                                    "error": "no P-Sigmoid plan at this keep rate to match"})
                elif name == "psigmoid":
                    matched.append(next(r for r in keep if r["method"] == "psigmoid" and r["field"] == field))
                else:
                    matched.append(run(name, target, "flops", field))
        return {"keep": keep, "matched": matched, "targets": targets}
    return cached(named("field_table", model), compute)


def field_speed(model: str | None = None) -> dict:
    """Prefill speedup of every row of `field_table`, one interleaved run per row group (as
    `methods_speed`), keyed "keep <budget>" and "matched <budget>" (`field_group`)."""
    model = model or first_model()

    def compute():
        from .. import timing

        runner, test = runners.get("test", model)
        table = field_table(model)
        inputs = runner.inputs(test.samples[:size("speed_batch")], test)
        out = {}
        for way in ("keep", "matched"):
            for field in FIELD_BUDGETS:
                rows = [r for r in table[way] if r.get("field") == field and "error" not in r]
                chosen = {r["method"]: policies.policy_for(runner, test, r["method"], r["budget"], r["kind"])
                            for r in rows}
                if chosen:
                    out[field_group(way, field)] = timing.prefill_policies(
                        runner.model, inputs, chosen, repeats=size("table_speed_repeats"))
        return {"groups": out, "batch": size("speed_batch")}
    return cached(named("field_speed", model), compute)


def field_group(way: str, field: float) -> str:
    """Name of a row group of the field tables: "keep 0.333333", "matched 0.111111"."""
    return f"{way} {field:g}"


def stored_record(experiment: str, method: str, budget, kind: str = "keep", seed: int = 0,
                  model: str | None = None) -> dict:
    """The latest summary record of an evaluation in the results store (a testbed's test split)."""
    model = model or first_model()
    found = store.find(store.load(experiment=experiment), method=method, budget=budget, kind=kind, seed=seed,
                         model=model, split="test")
    if not found:
        raise FileNotFoundError(f"no record of {method} at {budget} ({kind}) in experiment {experiment!r}: "
                                f"evaluate it first")
    return found[-1]


def correct(record: dict, families=None) -> np.ndarray:
    """Per-question correctness (test split, in its order; only the questions of `families` if
    given) of the evaluation behind a summary record, read from the run file the record names."""
    from ..evaluation import read_run
    from ..paths import results_dir

    _, split = runners.get("test", record.get("model") or first_model())
    preds = {sid: r["pred"] for sid, r in read_run(results_dir() / record["run_file"]).items()}
    keep = [s for s in split.samples if families is None or s.family in families]
    return np.array(per_question(keep, [preds[s.id] for s in keep]), dtype=float)


def per_sample_correct(experiment: str, method: str, budget, kind: str = "keep", seed: int = 0,
                       model: str | None = None) -> np.ndarray:
    """`correct` of a stored evaluation (for bootstrap intervals)."""
    model = model or first_model()
    return correct(stored_record(experiment, method, budget, kind, seed, model))


# ------------------------------------------------------------------ chapter 4: which layer scores
def score_sources() -> dict:
    """The same plans scored from the previous layer's attention and from the current layer's q/k,
    on test: G-Search's plan, FastV and PyramidDrop at every budget. A method's default source is
    its table record; the other source is evaluated here (experiment "sources")."""
    from ..scores import SCORE_SOURCES

    def compute():
        runner, test = runners.get("test")
        rows = []
        for method, budgets, default in (("gsearch", (None,), searches.SEARCH_SOURCE),
                                         ("fastv", BUDGETS, "previous"), ("pdrop", BUDGETS, "current")):
            for budget in budgets:
                recs = {}
                if method == "gsearch":
                    recs[default] = gsearch()["last"]["test"]  # the record the other chapters use
                else:
                    recs[default] = next(r for r in methods_table() if r.get("method") == method
                                         and r.get("budget") == budget)
                    if "error" in recs[default]:  # infeasible at this budget: the methods table says why
                        continue
                for source in SCORE_SOURCES:
                    if source in recs:
                        continue
                    hp = {"source": source, **({"query": "last"} if method == "gsearch" else {})}
                    recs[source] = evaluations.eval_method(runner, test, method, budget, experiment="sources",
                                                           measure_speed=False, progress=False, **hp)
                diff = analysis.paired_bootstrap(correct(recs["previous"]), correct(recs["current"]))
                rows.append({"method": method, "budget": budget, "default": default,
                             "previous": recs["previous"]["overall"], "current": recs["current"]["overall"],
                             "keep_rate": recs[default]["keep_rate"], "difference": diff})
        return {"rows": rows}
    return cached("score_sources", compute)["rows"]


# ------------------------------------------------------------------ chapter 6: CLS similarity / knee
CLS_SHARE = 0.22  # the CLS-knee paper's average share of kept tokens
def cls_knee(model: str | None = None) -> dict:
    """CLS-similarity curves on val and the CLS-knee method on test (two stages, stage 1 alone, every
    knee detector, stage 1 at the paper's share). A model whose vision tokens are not one image's
    patch tokens (LLaVA-NeXT's crops) gives {"unsupported": the reason} instead."""
    model = model or first_model()

    def compute():
        from ..engine import UnsupportedInput
        from ..methods.cls_knee import DETECTORS

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
    return cached(named("cls_knee", model), compute)


# ------------------------------------------------------------------ chapter 7: DyVTE
def vtw_sweep(model: str | None = None) -> dict:
    """Accuracy on val when every vision token is removed before layer l, for each l (+ full)."""
    model = model or first_model()

    def compute():
        runner, val = runners.get("val", model)
        L = runner.model.config.get_text_config().num_hidden_layers
        score = searches.val_scorer(runner, val)
        acc = {layer: score(Plan.drop_at(L, runner.n_vision, layer, 0)) for layer in range(0, L + 1)}
        return {"accuracy": acc}
    return cached(named("vtw_sweep", model), compute)


def three_stages(model: str | None = None) -> list[dict]:
    model = model or first_model()

    def compute():
        runner, val = runners.get("val", model)
        return {"rows": analysis.attention_mass(runner, val.subset(size("stage_questions")), progress=False)}
    return cached(named("three_stages", model), compute)["rows"]


def routers_path(seed: int, model: str | None = None):
    """The book's routers live with its results (stamped by code and weights): routers trained for
    another checkpoint, or on the smoke build's 96 questions, are never picked up by a full build."""
    model = model or first_model()
    from ..paths import results_dir

    return results_dir() / f"{named('dyvte_routers', model)}_seed{seed}.safetensors"


def dyvte_routers(seed: int, model: str | None = None) -> dict:
    """Train (or load) the routers of one seed. Routers saved by another configuration (model,
    weights, seed, questions, code: `dyvte_train.fingerprint`) are refused, naming what differs."""
    model = model or first_model()
    from .. import fingerprint as fp
    from ..journal import write_atomic
    from ..methods import dyvte_train

    path = routers_path(seed, model)
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
    model = model or first_model()

    def compute():
        runner, test = runners.get("test", model)
        seeds = size("router_seeds")
        out = {"seeds": {}}
        for seed in seeds:
            info = dyvte_routers(seed, model)
            rec = evaluations.eval_method(runner, test, "dyvte", None, experiment="dyvte", seed=seed,
                                         routers=str(routers_path(seed, model)), progress=False)
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
                                                     routers=str(routers_path(seeds[0], model)),
                                                     progress=False)
        return out
    return cached(named("dyvte", model), compute)


# ------------------------------------------------------------------ chapter 8: efficiency
def efficiency() -> dict:
    def compute():
        import torch

        from .. import timing, tiny

        runner, test = runners.get("test")
        L = runner.model.config.get_text_config().num_hidden_layers
        keeps = [1.0, 0.75, 0.5, 0.25, 0.125, 0.0]
        batch = size("efficiency_batch")
        inputs = runner.inputs(test.samples[:batch], test)
        rows = timing.prefill(runner.model, inputs, timing.keep_plans(L, runner.n_vision, keeps),
                             repeats=size("prefill_repeats"))
        dec = [{"keep": k, **timing.decode(runner.model, inputs,
                                           Plan.drop_at(L, runner.n_vision, 1, round(k * runner.n_vision)),
                                           new_tokens=size("decode_new_tokens"),
                                           repeats=size("decode_repeats"))}
               for k in (0.5, 0.25, 0.125)]
        # cost growth with the number of vision tokens: a random-init LLaVA at several resolutions
        growth = []
        for side in size("growth_sizes"):
            model = tiny.build_sized(image_size=side)
            inp = tiny.make_inputs(model, "llava", batch=4)
            n = tiny.n_image_tokens(model, "llava")
            r = timing.prefill(model, inp,
                               {"keep=0.25": Plan.drop_at(model.config.text_config.num_hidden_layers,
                                                                       n, 1, round(0.25 * n))},
                              repeats=size("growth_repeats"))[0]
            growth.append({"image_size": side, "n_vision": n, **r})
            del model
            torch.set_num_threads(torch.get_num_threads())
        return {"prefill": rows, "decode": dec, "growth": growth, "batch": batch}
    return cached("efficiency", compute)


GENERATION_METHODS = ("fastv", "pdrop")  # plan-based methods timed end to end at every budget


def generation(model: str | None = None) -> dict:
    """End-to-end generation of one testbed (`vtr.timing.generate`): FastV and PyramidDrop at every
    budget (G-Search's plan too on the 8-layer testbed), one interleaved run per output length."""
    model = model or first_model()

    def compute():
        from .. import timing
        from ..plan import PlanError

        runner, test = runners.get("test", model)
        info = searches.info_for(runner, test)
        plans, skipped = {}, []
        for budget in BUDGETS:
            for name in GENERATION_METHODS:
                try:
                    plans[f"{name} {budget}"] = policies.policy_for(runner, test, name, budget).plan
                except PlanError as err:  # reported, not hidden
                    skipped.append(f"{name} at {budget}: {err}")
        if model == first_model():
            plans["gsearch"] = Plan(tuple(gsearch()["last"]["search"]["plan"]), info.n_vision)
        inputs = runner.inputs(test.samples[:size("generate_batch")], test)
        rows = timing.generate(runner.model, inputs, plans, list(size("generate_new_tokens")),
                               repeats=size("generate_repeats"))
        return {"rows": rows, "skipped": skipped, "batch": size("generate_batch"), "model": model,
                "n_layers": info.n_layers}
    return cached(named("generation", model), compute)


def paired_difference(experiment: str, a: str, b: str, budget, kind: str = "keep",
                      model: str | None = None) -> dict:
    """Bootstrap CI of accuracy(a) - accuracy(b) on the same test questions."""
    model = model or first_model()
    return analysis.paired_bootstrap(per_sample_correct(experiment, a, budget, kind, model=model),
                                     per_sample_correct(experiment, b, budget, kind, model=model))


def record_difference(a, b, families=None) -> dict:
    """Paired-bootstrap 95% interval of accuracy(a) - accuracy(b) for summary records of the same
    test questions (only the questions of `families` if given). `a` or `b` may be a list of records
    (router seeds, say): their per-question correctness is averaged first."""
    def answers(recs):
        recs = recs if isinstance(recs, list) else [recs]
        return np.mean([correct(r, families) for r in recs], axis=0)
    return analysis.paired_bootstrap(answers(a), answers(b))
