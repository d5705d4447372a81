"""The book's experiments on the testbed, each computed once and saved (load-or-compute).

Every chapter and the introduction's headline table call these; whichever page executes first
computes a result, the others read the saved JSON. Results live in `vtr.paths.results_dir()`,
whose name carries a hash of the code and weights, so nothing computed by other code is reused.
"""
from __future__ import annotations

import json
import time

import numpy as np

from . import analysis, experiments, results
from .paths import data_dir, smoke
from .plan import Plan

BUDGETS = (0.5, 0.25, 0.125)
TABLE_METHODS = ("fastv", "pdrop", "sparsevlm", "random", "uniform", "vtw", "visionzip", "prumerge", "prumerge_plus",
                 "tome", "psigmoid")
TOLERANCE = 0.005


def cached(name: str, compute):
    saved = results.load_json(name)
    if saved is not None:
        return saved
    t0 = time.time()
    value = compute()
    value["_seconds"] = round(time.time() - t0, 1)
    results.save_json(name, value)
    return value


# ------------------------------------------------------------------ chapter 2: the testbed
def testbed_accuracy() -> dict:
    def compute():
        from .cli_testbed import with_blank
        from .evaluate import evaluate
        from .testbed.tasks import answer_space

        # what `vtr testbed eval --split test` prints, from the book's runner: the unpruned run is
        # the run file every experiment shares, and the test images' features stay in its cache
        runner, split = experiments.testbed("test")
        real = experiments.eval_method(runner, split, "full", None, experiment="testbed", progress=False,
                                       measure_speed=False)
        blank = evaluate(runner, split, progress=False, blank=True)["metrics"]
        res = with_blank(real, blank)
        # answer prior: accuracy of always giving the family's most frequent test answer
        majority = {}
        for fam in answer_space():
            answers = [s.answer for s in split.samples if s.family == fam]
            if answers:
                majority[fam] = max(set(answers), key=answers.count)
        hits = {fam: [s.answer == majority[fam] for s in split.samples if s.family == fam] for fam in majority}
        res["prior"] = {fam: float(np.mean(h)) for fam, h in hits.items()}
        res["prior_overall"] = float(np.mean([s.answer == majority[s.family] for s in split.samples]))
        return res
    return cached("testbed_accuracy", compute)


# The testbed's accuracy target, in the trigger format.
TARGET_OVERALL, TARGET_FAMILY = 0.90, 0.80


def families_from_image(acc: dict, margin: float = 0.10) -> tuple[list[str], list[str]]:
    """(families answered from the image, the others) for a `testbed_accuracy()` result: from the
    image = more than `margin` above the family's answer prior and more than `margin` lost when the
    image is blanked."""
    fams = list(acc["families"])
    uses = [f for f in fams if acc["families"][f] - acc["prior"][f] > margin
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
    """Where the trigger (and the text tokens) look, per layer, when asked about one named object."""
    def compute():
        from .models import load
        from .testbed.probes import attribute_regions

        runner = load("testbed")
        split, masks = attribute_regions(32 if smoke() else 300)
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            out[query] = analysis.region_lift(analysis.layer_scores(runner, split, query, progress=False), masks)
        return out
    return cached("target_attention", compute)


# ------------------------------------------------------------------ chapter 3: rank consistency
def rank_consistency() -> dict:
    def compute():
        runner, split = experiments.testbed("val")
        split = split.subset(32 if smoke() else 300)
        out = {"n": len(split)}
        for query in ("last", "text_mean"):
            s = analysis.layer_scores(runner, split, query, progress=False)
            taus = analysis.kendall_per_sample(s)
            n_vision = s.shape[2]
            k = n_vision // 4
            top = np.argsort(-s, axis=2, kind="stable")[:, :, :k]
            # nestedness: share of layer l+1's top-k that is also in layer l's top-k
            nested = [float(np.mean([len(set(top[i, l + 1]) & set(top[i, l])) / k for i in range(len(s))]))
                      for l in range(s.shape[1] - 1)]
            out[query] = {"tau_mean": taus.mean(0).tolist(), "tau_std": taus.std(0).tolist(),
                          "per_sample_adjacent": [taus[:, l, l + 1].tolist() for l in range(s.shape[1] - 1)],
                          "overlap_k": k, "overlap": analysis.topk_overlap(s, k).tolist(), "nested": nested}
        return out
    return cached("rank_consistency", compute)


def tau_excluding_first(rc: dict, query: str = "last") -> float:
    """Mean Kendall tau over pairs of distinct layers, both >= 1 (the paper excludes layer 1)."""
    t = np.array(rc[query]["tau_mean"])
    L = len(t)
    pairs = [t[i, j] for i in range(1, L) for j in range(i + 1, L)]
    return float(np.mean(pairs))


# ------------------------------------------------------------------ chapter 4: G-Search
def gsearch() -> dict:
    def compute():
        runner, val = experiments.testbed("val")
        _, test = experiments.testbed("test")
        out = {}
        for query in ("last", "text_mean"):
            g = experiments.run_gsearch(runner, val, TOLERANCE, query=query, progress=False)
            rec = experiments.eval_method(runner, test, "gsearch", None, experiment="gsearch", query=query,
                                          progress=False)
            out[query] = {"search": g, "test": rec}
        out["full"] = experiments.eval_method(runner, test, "full", None, experiment="gsearch", progress=False,
                                              measure_speed=False)
        return out
    return cached("gsearch", compute)


# ------------------------------------------------------------------ chapter 5: P-Sigmoid and the methods table
def psigmoid(budget: float, query: str = "last") -> dict:
    def compute():
        runner, val = experiments.testbed("val")
        g = gsearch()[query]["search"]
        init = Plan(tuple(g["plan"]), g["n_vision"])
        return experiments.run_psigmoid(runner, val, budget, init_plan=init, query=query, progress=False)
    return cached(f"psigmoid_{budget}_{query}", compute)


def methods_table() -> list[dict]:
    """Every method at every budget on the test split (one record each, in the results store)."""
    def compute():
        runner, test = experiments.testbed("test")
        recs = [experiments.eval_method(runner, test, "full", None, experiment="table", progress=False,
                                        measure_speed=False)]
        for budget in BUDGETS:
            psigmoid(budget)
            for name in TABLE_METHODS:
                try:
                    recs.append(experiments.eval_method(runner, test, name, budget, experiment="table",
                                                        progress=False))
                except ValueError as e:  # an infeasible budget is reported, not hidden
                    recs.append({"method": name, "budget": budget, "error": str(e)})
        return {"records": recs}
    return cached("methods_table", compute)["records"]


def per_sample_correct(experiment: str, method: str, budget, kind: str = "keep", seed: int = 0, **hp) -> np.ndarray:
    """Per-question correctness of a finished evaluation (for bootstrap error bars)."""
    from .testbed.benchmark import load

    split = load("test").subset(experiments.limits()["test"])
    tag = experiments.run_tag("testbed", None, experiment, method, budget, kind, "test", len(split), seed, hp)
    from .evaluate import read_run

    path = experiments._run_dir() / f"{tag}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no run file {path}: evaluate {method} at {budget} ({experiment}) first")
    preds = {sid: r["pred"] for sid, r in read_run(path).items()}
    return np.array([preds[s.id] == s.answer for s in split.samples], dtype=float)


# ------------------------------------------------------------------ chapter 6: CLS similarity / knee
def cls_knee() -> dict:
    def compute():
        from .methods.cls_knee import DETECTORS

        runner, test = experiments.testbed("test")
        _, val = experiments.testbed("val")
        curves = analysis.cls_curves(runner, val.subset(32 if smoke() else 300))
        srt = -np.sort(-curves, axis=1)
        knees = {name: [int(det(row)) for row in srt] for name, det in DETECTORS.items()}
        two = experiments.eval_method(runner, test, "cls_knee", None, experiment="cls_knee", progress=False)
        one = experiments.eval_method(runner, test, "cls_knee", None, experiment="cls_knee", progress=False,
                                      stage2=0)
        return {"sorted_curves": srt[:50].tolist(), "mean_curve": srt.mean(0).tolist(),
                "knees": knees, "two_stage": two, "stage1_only": one}
    return cached("cls_knee", compute)


# ------------------------------------------------------------------ chapter 7: DyVTE
def vtw_sweep() -> dict:
    """Accuracy on val when every vision token is removed before layer l, for each l (+ full)."""
    def compute():
        runner, val = experiments.testbed("val")
        L = runner.model.config.get_text_config().num_hidden_layers
        score = experiments.val_scorer(runner, val)
        acc = {l: score(Plan.drop_at(L, runner.n_vision, l, 0)) for l in range(0, L + 1)}
        return {"accuracy": acc}
    return cached("vtw_sweep", compute)


def three_stages() -> list[dict]:
    def compute():
        runner, val = experiments.testbed("val")
        return {"rows": analysis.attention_mass(runner, val.subset(32 if smoke() else 200), progress=False)}
    return cached("three_stages", compute)["rows"]


def routers_path(seed: int):
    """The book's routers live with its results (stamped by code and weights): routers trained for
    another checkpoint, or on the smoke build's 96 questions, are never picked up by a full build."""
    from .paths import results_dir

    return results_dir() / f"dyvte_routers_seed{seed}.safetensors"


def dyvte_routers(seed: int) -> dict:
    """Train (or load) the routers of one seed. Routers saved by another configuration (model,
    weights, seed, questions, code: `dyvte_train.fingerprint`) are refused, naming what differs."""
    from . import fingerprint as fp
    from .journal import write_atomic
    from .methods import dyvte_train

    path = routers_path(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    info_path = path.with_suffix(".json")
    runner, _ = experiments.testbed("val")
    n_questions = 96 if smoke() else 1200
    stamp = dyvte_train.fingerprint(runner, n_questions, seed)
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        fp.check(info.get("fingerprint", {}), stamp, str(info_path), fresh=f"delete {path} and {info_path}")
        return info
    info = dyvte_train.train(runner, n_questions=n_questions, seed=seed, out=path, progress=False)
    write_atomic(info_path, json.dumps(info))  # written last: the routers file is complete by then
    return info


def dyvte() -> dict:
    def compute():
        runner, test = experiments.testbed("test")
        seeds = (0,) if smoke() else (0, 1, 2)
        out = {"seeds": {}}
        for seed in seeds:
            info = dyvte_routers(seed)
            rec = experiments.eval_method(runner, test, "dyvte", None, experiment="dyvte", seed=seed,
                                         routers=str(routers_path(seed)), progress=False)
            out["seeds"][seed] = {"train": info, "test": rec}
        out["full"] = experiments.eval_method(runner, test, "full", None, experiment="dyvte", progress=False,
                                              measure_speed=False)
        # VTW and FastV at the cost DyVTE chose (seed 0), and FastV + DyVTE
        cost = out["seeds"][seeds[0]]["test"]["keep_rate"]
        L = runner.model.config.get_text_config().num_hidden_layers
        k = max(1, round(cost * L))
        out["vtw"] = experiments.eval_method(runner, test, "vtw", None, experiment="dyvte", K=k, progress=False)
        out["fastv"] = experiments.eval_method(runner, test, "fastv", round(cost, 3), experiment="dyvte",
                                               progress=False)
        out["fastv_dyvte"] = experiments.eval_method(runner, test, "fastv_dyvte", 0.5, experiment="dyvte",
                                                     routers=str(routers_path(seeds[0])),
                                                     progress=False)
        return out
    return cached("dyvte", compute)


# ------------------------------------------------------------------ chapter 8: efficiency
def efficiency() -> dict:
    def compute():
        import torch

        from . import bench, tiny
        from .cli_bench import bench_inputs

        runner, test = experiments.testbed("test")
        L = runner.model.config.get_text_config().num_hidden_layers
        keeps = [1.0, 0.75, 0.5, 0.25, 0.125, 0.0]
        batch = 8 if smoke() else 32
        inputs = bench_inputs(runner, test, batch)
        rows = bench.prefill(runner.model, inputs, bench.keep_plans(L, runner.n_vision, keeps),
                             repeats=2 if smoke() else 7)
        dec = [{"keep": k, **bench.decode(runner.model, inputs, Plan.drop_at(L, runner.n_vision, 1,
                                                                              round(k * runner.n_vision)),
                                          new_tokens=4 if smoke() else 16, repeats=1 if smoke() else 3)}
               for k in (0.5, 0.25, 0.125)]
        # cost growth with the number of vision tokens: a random-init LLaVA at several resolutions
        growth = []
        for size in ((32, 64) if smoke() else (32, 64, 96, 128)):
            model = tiny.build_sized(image_size=size)
            inp = tiny.make_inputs(model, "llava", batch=4)
            n = tiny.n_image_tokens(model, "llava")
            r = bench.prefill(model, inp, {"keep=0.25": Plan.drop_at(model.config.text_config.num_hidden_layers,
                                                                       n, 1, round(0.25 * n))},
                              repeats=2 if smoke() else 5)[0]
            growth.append({"image_size": size, "n_vision": n, **r})
            del model
            torch.set_num_threads(torch.get_num_threads())
        return {"prefill": rows, "decode": dec, "growth": growth, "batch": batch}
    return cached("efficiency", compute)


def paired_difference(experiment: str, a: str, b: str, budget, kind: str = "keep") -> dict:
    """Bootstrap CI of accuracy(a) - accuracy(b) on the same test questions."""
    return analysis.paired_bootstrap(per_sample_correct(experiment, a, budget, kind),
                                     per_sample_correct(experiment, b, budget, kind))
