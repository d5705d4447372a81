"""The P-Sigmoid chapter: what its page glues, tabulates and plots, from `runs.psigmoid` (the BO
searches), `runs.methods_table` / `methods_speed` (every method at every budget), `runs.field_table` /
`field_speed` (the field's budgets, at equal keep rate and at matched decoder FLOPs) and the stored
per-question correctness of the table's evaluations (bootstrap intervals).

Like the G-Search page it compares the profile's first model with its last (`gsearch.pair`), named
by layer count where that tells them apart (`gsearch.labels`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ... import analysis
from ...catalogue import display
from .. import tables
from ..definitions import LLAVA_VISION_TOKENS
from .gsearch import label_column, labels, pair

MARKDOWN = ("profile-note", "field-shallow", "psigmoid-headline")  # facts glued as Markdown
INTERVAL_METHODS = ("psigmoid", "fastv", "pdrop", "random")  # the bootstrap figure's methods
SHARE_METHODS = ("prumerge", "prumerge_plus", "visionzip", "tome")  # encoder-side: share of unpruned
WAYS = ("keep", "matched")
# how each way sets the field's budgets, in the words of the tables' captions
FIELD_WAYS = {"keep": "mean keep rate", "matched": "matched decoder FLOPs"}
NAN_CI = {"mean": float("nan"), "lo": float("nan"), "hi": float("nan")}


def layers_text(label) -> str:
    """"8 layers" for a model labelled by depth, else its name."""
    return f"{label} layers" if isinstance(label, (int, np.integer)) else str(label)


def bo_scores(result: dict) -> list[float]:
    """Validation accuracy of every proposal of a P-Sigmoid search, in order."""
    return [h["score"] for h in result["history"] if isinstance(h, dict) and "score" in h]


def scored_from_table(methods, scored_from: dict) -> pd.DataFrame:
    """What each method of the table ranks tokens by (`vtr.methods.SCORED_FROM`), P-Sigmoid last."""
    own = {"method": "psigmoid", "scores from": "previous layer: last token's attention in layer l-1"}
    return pd.DataFrame([{"method": m, "scores from": scored_from[m]} for m in methods if m in scored_from]
                        + [own]).set_index("method")


def skipped(recs: dict, label: dict) -> list[str]:
    """One line per method record that could not run (its `error`), by model."""
    return [f"{layers_text(label[m])}: {r['method']} at {r['budget']}: {r['error']}"
            for m in recs for r in recs[m] if "error" in r]


def skipped_table(recs: dict, label: dict):
    """The method records that could not run (their `error`), by testbed, as a table."""
    from . import REASON, not_run_table

    return not_run_table([{"testbed": layers_text(label[m]), "method": r["method"], "budget": r["budget"],
                           REASON: r["error"]} for m in recs for r in recs[m] if "error" in r])


def best(layout: pd.DataFrame, group: str) -> tuple[str, float, float]:
    """(best method by average, its average, FastV's average) in one row group of a paper layout
    (the unpruned row included, as in the table); ("none", NaN, NaN) for a group with no row."""
    if group not in layout.index.get_level_values("budget"):
        return "none", float("nan"), float("nan")
    d = layout.xs(group, level="budget")
    fastv = float(d.loc["fastv", "average"]) if "fastv" in d.index else float("nan")
    return d["average"].idxmax(), float(d["average"].max()), fastv


def share(layout: pd.DataFrame, group: str, method: str) -> float:
    """A method's "% of unpruned" in a row group, NaN where it has no row (it could not run)."""
    if (group, method) not in layout.index:
        return float("nan")
    return float(layout.loc[(group, method), "% of unpruned"])


def shown_name(name: str) -> str:
    """The best method's name as the prose shows it ("none": no method had a row in the group)."""
    return "no method could run" if name == "none" else display(name)


def text_twins(facts: dict) -> dict:
    """A "-text" twin of every share and average the prose shows: "63.2%" / "71.4", or what stands
    there when the method had no row (it could not run on this model), never "nan"."""
    def shown(v, share):
        if isinstance(v, float) and math.isfinite(v):
            return f"{v:.1f}%" if share else f"{v:.1f}"
        return "no value (it could not run here)" if share else "no row"

    return {f"{k}-text": shown(v, "-share-" in k) for k, v in facts.items() if "-share-" in k or "-avg-" in k}


def field_label(way: str, field_group):
    """The row-group function of a field table: label "64 (11.1%)" and the timing key
    (`field_group(way, keep rate)`, `runs.field_group`)."""
    def group(r):
        tokens = round(r["field"] * LLAVA_VISION_TOKENS)
        return f"{tokens} ({100 * r['field']:.1f}%)", field_group(way, r["field"])
    return group


def field_skipped(field: dict, label: dict) -> list[str]:
    """The field tables' records that could not run, once each."""
    return sorted({f"{layers_text(label[m])}, {way}: {r['method']} at {r['field']:.3f}: {r['error']}"
                   for m in field for way in WAYS for r in field[m][way] if "error" in r})


def field_skipped_table(field: dict, label: dict):
    """The field tables' records that could not run, once each, as a table."""
    from . import REASON, not_run_table

    return not_run_table(sorted(
        ({"testbed": layers_text(label[m]), "budgets as": FIELD_WAYS.get(way, way), "method": r["method"],
          "budget": r["field"], REASON: r["error"]}
         for m in field for way in WAYS for r in field[m][way] if "error" in r),
        key=lambda row: (row["testbed"], row["budgets as"], row["budget"], row["method"])))


def targets_table(field: dict, label: dict) -> pd.DataFrame:
    """The decoder FLOPs each matched-FLOPs row group is set to (P-Sigmoid's plan at that keep rate)."""
    return pd.DataFrame([{"testbed": layers_text(label[m]),
                          "tokens per layer": round(float(b) * LLAVA_VISION_TOKENS),
                          "decoder FLOPs target %": None if t is None else 100 * t}
                         for m in field for b, t in field[m]["targets"].items()])


def field_shallow(field: dict, n_layers: int, lowest: float) -> str:
    """Why the lowest field budget is out of reach on a shallow model, or that every budget had a
    P-Sigmoid plan to match (Markdown for the prose)."""
    if field["targets"][str(lowest)] is not None:
        return "On the 8-layer testbed every budget had a P-Sigmoid plan to match."
    rows = [r for r in field["keep"] if r.get("field") == lowest]
    failed = [display(r["method"]) for r in rows if "error" in r]
    ran = [r for r in rows if "error" not in r]
    whole = next(r for r in field["keep"] if r["method"] == "full")["vision_per_layer"][0]
    # the methods that ran there reduce the tokens before layer 0 (fewer than the image's tokens in layer 0)
    early = [display(r["method"]) for r in ran if r["vision_per_layer"][0] < whole]
    return (f"On the 8-layer testbed, layer 0 kept whole already spends a mean keep rate of "
            f"{1 / n_layers:.3f}, more than {lowest:.3f}: the methods that keep it whole "
            f"({', '.join(failed)}) cannot meet that budget there, and its matched-FLOPs group is empty. "
            f"Of the {len(ran)} that run in its keep-rate group, {len(early)} "
            f"({', '.join(early)}) do so by reducing the vision tokens before layer 0 "
            f"(a method whose first pruned layer may move, as FastV's K does, moves it to 0).")


def intervals(correct: dict, label: dict, budgets) -> pd.DataFrame:
    """Test accuracy (%) with its bootstrap 95% interval per model, budget and method; `correct` maps
    (model, budget, method) to per-question correctness (missing where the method could not run)."""
    rows = []
    for m in label:
        for b in budgets:
            for name in INTERVAL_METHODS:
                if (m, b, name) not in correct:
                    continue
                ci = analysis.bootstrap(correct[(m, b, name)])
                rows.append({label_column(label): label[m], "budget": b, "method": name,
                             "accuracy": 100 * ci["mean"], "lo": 100 * ci["lo"], "hi": 100 * ci["hi"]})
    return pd.DataFrame(rows, columns=[label_column(label), "budget", "method", "accuracy", "lo", "hi"])


def versus_fastv(correct: dict, model: str, budget) -> dict:
    """Paired-bootstrap interval of P-Sigmoid - FastV (fractions) on the same questions; NaN where
    either could not run."""
    a, b = correct.get((model, budget, "psigmoid")), correct.get((model, budget, "fastv"))
    return NAN_CI if a is None or b is None else analysis.paired_bootstrap(a, b)


def scenario2(correct: dict, models, label: dict, budgets) -> pd.DataFrame:
    """P-Sigmoid - FastV (points) with its paired interval, per model and budget."""
    rows = []
    for m in models:
        for b in budgets:
            d = versus_fastv(correct, m, b)
            rows.append({label_column(label): label[m], "budget": b, "P-Sigmoid - FastV": 100 * d["mean"],
                         "lo": 100 * d["lo"], "hi": 100 * d["hi"]})
    return pd.DataFrame(rows).set_index([label_column(label), "budget"])


def layouts(data: dict) -> dict:
    """The paper layouts: "methods" by model, "field" by (model, way)."""
    from ..runs import field_group

    return {"methods": {m: tables.paper_layout(data["recs"][m], data["speed"][m]) for m in data["models"]},
            "field": {(m, way): tables.paper_layout(data["field"][m][way], data["field_speed"][m],
                                                    field_label(way, field_group))
                      for m in data["models"] for way in WAYS}}


def inputs(models: list[str] | None = None) -> dict:
    """Every saved result the page reads, by model (load-or-compute through `runs` and `claims`)."""
    from .. import claims, runs
    from . import profile_note

    models = models or runs.models()
    first, deep = pair(models)
    correct = {}
    for m in models:
        for b in runs.BUDGETS:
            for name in INTERVAL_METHODS:
                try:
                    correct[(m, b, name)] = runs.per_sample_correct("table", name, b, model=m)
                except FileNotFoundError:  # could not run at this budget: the tables say why
                    continue
    return {"models": models, "budgets": runs.BUDGETS, "field_budgets": runs.FIELD_BUDGETS,
            "n_layers": {m: runs.n_layers(m) for m in models},
            "ps": {m: {b: runs.psigmoid(b, model=m) for b in runs.BUDGETS} for m in models},
            "recs": {m: runs.methods_table(m) for m in models},
            "speed": {m: runs.methods_speed(m)["budgets"] for m in models},
            "field": {m: runs.field_table(m) for m in models},
            "field_speed": {m: runs.field_speed(m)["groups"] for m in models},
            "correct": correct, "profile_note": profile_note(),
            "psigmoid_claims": {m: claims.psigmoid_claim(m) for m in (first, deep)},
            "tokenpacker": claims.tokenpacker_claim(first),
            "headline": claims.verdicts_md(claims.psigmoid_claim, claims.tokenpacker_claim)}


def facts(data: dict, laid: dict | None = None) -> dict:
    """Every value the page glues, from `inputs()` (or the same structure built by hand); `laid` are
    its `layouts(data)` when already built."""
    laid = laid or layouts(data)
    first, deep = pair(data["models"])
    label = labels(data["n_layers"])
    recs = data["recs"]
    out = {"profile-note": data["profile_note"],
           "ps-max-evaluations": max(r["evaluations"] for m in data["models"]
                                     for r in data["ps"][m].values()),
           "ps-n-vision": round(recs[first][0]["vision_per_layer"][0])}
    fastv = next(r for r in recs[deep] if r["method"] == "fastv" and r["budget"] == 0.125)
    out["ps-deep-fastv-k"] = round(fastv["vision_per_layer"][1]) if "error" not in fastv else "none"
    for m, tag in ((first, ""), (deep, "-deep")):
        layout = laid["methods"][m]
        for b in data["budgets"]:
            name, value, fastv_avg = best(layout, f"{b:g}")
            out.update({f"ps-best-{b}{tag}": shown_name(name), f"ps-best-avg-{b}{tag}": value,
                        f"ps-fastv-avg-{b}{tag}": fastv_avg})
        for name in SHARE_METHODS:
            out[f"ps-{name}-share-0.5{tag}"] = share(layout, "0.5", name)
            out[f"ps-{name}-share-0.125{tag}"] = share(layout, "0.125", name)
    lowest = data["field_budgets"][-1]
    for m, tag in ((first, ""), (deep, "-deep")):
        for way in WAYS:
            group = field_label(way, lambda *a: None)({"field": lowest})[0]
            name, value, _ = best(laid["field"][(m, way)], group)
            out[f"field-best-{way}{tag}"] = shown_name(name)
            out[f"field-best-avg-{way}{tag}"] = value
    out.update({"field-n-tokens": round(lowest * LLAVA_VISION_TOKENS),
                "field-n-skipped": len(field_skipped(data["field"], label)),
                "field-shallow": field_shallow(data["field"][first], data["n_layers"][first], lowest)})
    for m, tag in ((first, ""), (deep, "-deep")):
        for b in data["budgets"]:
            d = versus_fastv(data["correct"], m, b)
            out.update({f"ps-fastv-diff{b}{tag}": 100 * d["mean"], f"ps-fastv-lo{b}{tag}": 100 * d["lo"],
                        f"ps-fastv-hi{b}{tag}": 100 * d["hi"]})
    out.update(text_twins(out))
    claims = data["psigmoid_claims"]
    out.update({"ps-verdict": claims[first].verdict, "ps-verdict-deep": claims[deep].verdict,
                "tp-verdict": data["tokenpacker"].verdict, "tp-measured": data["tokenpacker"].measured,
                "psigmoid-headline": data["headline"]})
    return out
