"""The G-Search chapter: what its page glues, tabulates and plots, from `runs.gsearch` results (one
per model: the saved searches and their test records), `runs.methods_speed` (G-Search's plan timed
under "searched") and `runs.score_sources`.

The chapter compares the profile's first model with its last (on the testbed: the 8-layer testbed and
the 16-layer one grown from it, whose layers 2i and 2i+1 began as copies of layer i). A model is
named by its layer count where that tells the models apart, else by its name (`labels`).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import tables

MARKDOWN = ("profile-note", "gsearch-headline")  # facts glued as Markdown, the rest as values


def pair(models: list[str]) -> tuple[str, str]:
    """(first, deep): the models the page compares; a one-model profile compares it with itself."""
    return models[0], models[-1]


def labels(n_layers: dict[str, int]) -> dict[str, int | str]:
    """Each model's label in the tables: its number of decoder layers when no two models share one,
    else its name."""
    depths = list(n_layers.values())
    distinct = len(set(depths)) == len(depths)
    return {m: L if distinct else m for m, L in n_layers.items()}


def label_column(label: dict) -> str:
    """The header of a column of `labels`: "layers" when they are layer counts, else "model"."""
    return "model" if any(isinstance(v, str) for v in label.values()) else "layers"


def compared(a: float, b: float, less: str, more: str, same: str = "the same as") -> str:
    """`less`, `more` or `same`: how a compares with b (for the prose)."""
    return less if a < b else more if a > b else same


def interval_reading(ci: dict) -> str:
    """Where a paired interval lies with respect to zero."""
    if ci["lo"] <= 0 <= ci["hi"]:
        return "contains zero"
    return "lies below zero" if ci["hi"] < 0 else "lies above zero"


def plan_text(plan) -> str:
    return ", ".join(map(str, plan))


def curve(search: dict) -> dict:
    """The searched keep rates of a saved search over depth l/(L-1), and the sigmoid of
    `vtr.search.psigmoid` fitted to them (the figure's dashed line)."""
    from ...plan import Plan
    from ...search.psigmoid import fit_to_plan, psigmoid_rates

    plan = Plan(tuple(search["plan"]), search["n_vision"])
    return {"depth": np.linspace(0, 1, plan.n_layers), "rates": np.array(plan.rates),
            "fitted": np.array(psigmoid_rates(fit_to_plan(plan), plan.n_layers)), "n_layers": plan.n_layers}


def half_depth(search: dict) -> str:
    """The depth l/(L-1) at which the searched keep rate first falls below one half, or "nowhere"."""
    keep, n = search["plan"], search["n_vision"]
    depth = np.linspace(0, 1, len(keep))
    below = [x for x, k in zip(depth, keep) if k / n < 0.5]
    return f"{below[0]:.2f}" if below else "nowhere"


def copy_pairs(deep_plan, n_first: int) -> tuple[int, int]:
    """(groups, groups keeping one count): the deep plan cut into the `n_first` groups of layers grown
    from one layer of the first model (`len(deep_plan) // n_first` layers each, at least one), and how
    many of those groups keep the same number of tokens in every layer."""
    ratio = max(1, len(deep_plan) // n_first)
    groups = [deep_plan[ratio * i:ratio * (i + 1)] for i in range(n_first)]
    return len(groups), sum(len(set(g)) == 1 for g in groups)


def evaluations_used(searches: dict[str, dict], label: dict) -> pd.DataFrame:
    """One row per evaluation of each model's search trace: its model label ("layers") and the
    validation questions it used. The unpruned reference, scored first on every look, is one of them."""
    return pd.DataFrame([{"layers": label[m], "questions": r["questions"]}
                         for m, s in searches.items() for r in s["trace"]], columns=["layers", "questions"])


def looks_table(used: pd.DataFrame, looks) -> pd.DataFrame:
    """Per model: evaluations, mean questions per evaluation, and how many stopped at each look (the
    index is named "model" when models are labelled by name)."""
    table = used.groupby("layers")["questions"].agg(
        evaluations="size", mean="mean", **{f"at {n}": (lambda q, n=n: int((q == n).sum())) for n in looks})
    table.index.name = label_column(dict(enumerate(table.index)))
    return table


def looks_shares(used: pd.DataFrame, label, looks) -> dict[str, float]:
    """Mean questions per evaluation of one model, and the shares settled at the first and the last look."""
    q = used[used["layers"] == label]["questions"]
    return {"mean": float(q.mean()), "first": float((q == looks[0]).mean()),
            "last": float((q == looks[-1]).mean())}


def family_columns(record: dict) -> dict[str, float]:
    """Accuracy (%) per family; on a benchmark profile the papers' columns (`tables.family_scores`)."""
    if any(f in tables.BENCHMARK_COLUMNS for f in record["families"]):
        return tables.family_scores(record)
    return {f: 100 * v for f, v in record["families"].items()}


def row_label(model: str, n_layers: int) -> str:
    return f"{model} ({n_layers} layers)"


def test_table(gs: dict, queries: dict, n_layers: dict) -> pd.DataFrame:
    """The unpruned model and G-Search's plan of every query on test, per model."""
    rows = []
    for m, g in gs.items():
        plans = [("unpruned", g["full"])] + [(f"G-Search ({q})", g[q]["test"]) for q in queries[m]]
        for name, r in plans:
            rows.append({"testbed": row_label(m, n_layers[m]), "plan": name, **family_columns(r),
                         "overall": 100 * r["overall"], "keep rate %": 100 * r["keep_rate"],
                         "FLOPs %": 100 * r["flops_ratio"]})
    return pd.DataFrame(rows).set_index(["testbed", "plan"])


def searched_speed(speed: dict) -> dict:
    """G-Search's row of a `runs.methods_speed` result (its plan, timed under "searched")."""
    return next(r for r in speed["budgets"]["searched"] if r["name"] == "gsearch")


def models_table(gs: dict, speed: dict, cis: dict, n_layers: dict) -> pd.DataFrame:
    """G-Search (last token) on test, one row per model: plan, cost, accuracy against the unpruned
    model with the paired interval of the change (`cis`: G-Search - unpruned), measured speedup."""
    rows = []
    for m, g in gs.items():
        s, t, full, ci = g["last"]["search"], g["last"]["test"], g["full"], cis[m]
        sp = searched_speed(speed[m])
        rows.append({"testbed": row_label(m, n_layers[m]),
                     "plan (vision tokens per layer)": plan_text(s["plan"]),
                     "mean keep rate %": 100 * t["keep_rate"], "decoder FLOPs %": 100 * t["flops_ratio"],
                     "prefill FLOPs %": 100 * sp["flops_ratio"], "evaluations": s["evaluations"],
                     "test accuracy %": 100 * t["overall"], "unpruned %": 100 * full["overall"],
                     "change (points)": 100 * ci["mean"], "95% CI low": 100 * ci["lo"],
                     "95% CI high": 100 * ci["hi"], "prefill speedup": sp["speedup"],
                     "speedup range": tables.span(*sp["speedup_range"])})
    return pd.DataFrame(rows)


def sources_table(rows: list[dict]) -> pd.DataFrame:
    """`runs.score_sources` rows: accuracy from each score source and the paired difference (points)."""
    return pd.DataFrame([{"method": r["method"],
                          "keep budget": "searched" if r["budget"] is None else r["budget"],
                          "default source": r["default"], "mean keep rate": r["keep_rate"],
                          "accuracy, previous layer %": 100 * r["previous"],
                          "accuracy, current layer %": 100 * r["current"],
                          "previous - current (points)": 100 * r["difference"]["mean"],
                          "95% CI low": 100 * r["difference"]["lo"],
                          "95% CI high": 100 * r["difference"]["hi"]}
                         for r in rows],
                        columns=["method", "keep budget", "default source", "mean keep rate",
                                 "accuracy, previous layer %", "accuracy, current layer %",
                                 "previous - current (points)", "95% CI low", "95% CI high"])


def sources_facts(src: pd.DataFrame) -> dict:
    """How many plans the two score sources were compared on, how many differ beyond the interval,
    and in how many of those the previous layer's score wins."""
    decided = src[(src["95% CI low"] > 0) | (src["95% CI high"] < 0)]
    return {"src-n": len(src), "src-decided": len(decided),
            "src-prev-wins": int((decided["previous - current (points)"] > 0).sum())}


def deep_steps(models_dir) -> int:
    """Training steps of a grown testbed after its block expansion (its saved `training.json`)."""
    recipe = json.loads((models_dir / "training.json").read_text())["recipe"]
    return recipe["caption_steps"] + recipe["lm_steps"] + recipe["tune_steps"]


def inputs(models: list[str] | None = None) -> dict:
    """Every saved result the page reads, by model (load-or-compute through `runs` and `claims`)."""
    from .. import claims, runs
    from . import profile_note

    models = models or runs.models()
    first, deep = pair(models)
    gs = {m: runs.gsearch(m) for m in models}
    speed = {m: runs.methods_speed(m) for m in models}
    if runs.is_testbed():
        from ...paths import testbed_model_dir

        steps = deep_steps(testbed_model_dir(deep))
    else:
        steps = "(testbed only)"
    return {"models": models, "gs": gs, "speed": speed,
            "queries": {m: runs.gsearch_queries(m) for m in models},
            "n_layers": {m: len(gs[m]["last"]["search"]["plan"]) for m in models},
            "cis": {m: runs.record_difference(gs[m]["last"]["test"], gs[m]["full"]) for m in models},
            "sources": runs.score_sources(), "deep_steps": steps, "profile_note": profile_note(),
            "gsearch_claims": {m: claims.gsearch_claim(m) for m in (first, deep)},
            "sshape_claims": {m: claims.sshape_claim(m) for m in models},
            "greedy": claims.greedy_claim(),
            "headline": claims.verdicts_md(claims.greedy_claim, claims.gsearch_claim, claims.sshape_claim)}


def facts(data: dict) -> dict:
    """Every value the page glues, from `inputs()` (or the same structure built by hand)."""
    first, deep = pair(data["models"])
    gs, n_layers = data["gs"], data["n_layers"]
    label = labels(n_layers)
    s, sd = gs[first]["last"]["search"], gs[deep]["last"]["search"]
    looks = s["sequential"]["looks"]
    used = evaluations_used({m: gs[m]["last"]["search"] for m in data["models"]}, label)
    out = {"profile-note": data["profile_note"], "deep-steps": data["deep_steps"],
           "gs-n-vision": s["n_vision"],
           "gs-evals": s["evaluations"], "gs-flops": s["flops_ratio"], "gs-keep": s["keep_rate"],
           "gs-plan": plan_text(s["plan"]), "gs-look-first": looks[0], "gs-look-add": looks[1] - looks[0],
           "gs-look-add2": looks[2] - looks[1], "gs-look-last": looks[-1]}
    for m, tag in ((first, ""), (deep, "-deep")):
        shares = looks_shares(used, label[m], looks)
        out.update({f"gs-q-mean{tag}": shares["mean"], f"gs-q-first{tag}": shares["first"],
                    f"gs-q-last{tag}": shares["last"]})
    groups, equal = copy_pairs(sd["plan"], n_layers[first])
    out.update({"gs-evals-deep": sd["evaluations"], "gs-flops-deep": sd["flops_ratio"],
                "gs-keep-deep": sd["keep_rate"], "gs-plan-deep": plan_text(sd["plan"]),
                "gs-keep-word": compared(sd["keep_rate"], s["keep_rate"], "lower than", "higher than"),
                "gs-half": half_depth(s), "gs-half-deep": half_depth(sd), "gs-pairs": groups,
                "gs-pairs-equal": equal})
    speeds = {m: searched_speed(data["speed"][m]) for m in (first, deep)}
    for m, tag in ((first, ""), (deep, "-deep")):
        ci, sp = data["cis"][m], speeds[m]
        out.update({f"gs-test-diff{tag}": 100 * ci["mean"], f"gs-test-lo{tag}": 100 * ci["lo"],
                    f"gs-test-hi{tag}": 100 * ci["hi"], f"gs-ci-reading{tag}": interval_reading(ci),
                    f"gs-speedup{tag}": sp["speedup"], f"gs-speedup-lo{tag}": sp["speedup_range"][0],
                    f"gs-speedup-hi{tag}": sp["speedup_range"][1],
                    f"gs-prefill-flops{tag}": sp["flops_ratio"]})
    out.update({"gs-n": gs[first]["last"]["test"]["n"], "gs-batch": data["speed"][first]["batch"],
                "gs-speedup-word": compared(speeds[deep]["speedup"], speeds[first]["speedup"],
                                            "smaller than", "larger than")})
    ss = data["sshape_claims"]
    out.update({"gs-verdict": data["gsearch_claims"][first].verdict,
                "gs-verdict-deep": data["gsearch_claims"][deep].verdict,
                "ss-verdict": ss[first].verdict, "ss-measured": ss[first].measured,
                "ss-verdict-deep": ss[deep].verdict, "ss-measured-deep": ss[deep].measured,
                "ss-depth-reading": "the same at both depths" if ss[first].verdict == ss[deep].verdict
                else "different at the two depths",
                "greedy-measured": data["greedy"].measured, "gsearch-headline": data["headline"]})
    out.update(sources_facts(sources_table(data["sources"])))
    return out
