"""The CLS-knee page: knee statistics of the CLS-similarity curves, the method's test table, the
knee-detector variants with their paired intervals, and the facts the page quotes.

A model whose vision tokens are not one image's patch tokens (LLaVA-NeXT's crops) cannot run the
method: `runs.cls_knee` says so ({"unsupported": reason}), and the page names it in one sentence.
The figure and the single-model facts use the first model that can run it (`inputs`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import family_columns

MARKDOWN = ("profile-note", "knee-unsupported", "cls-headline")  # facts glued as Markdown
SHOWN = 12  # curves drawn in the figure


def unsupported_md(knee: dict[str, dict]) -> str:
    """One sentence per model that cannot run the method, with its reason ("" when all can)."""
    return " ".join(f"*`{m}` cannot run CLS-knee pruning: {k['unsupported']}.*"
                    for m, k in knee.items() if "unsupported" in k)


def knee_stats(k: dict, shown: int = SHOWN) -> dict:
    """Kneedle's knees over the val images of a `runs.cls_knee` result: curves drawn, images,
    mean, share of the patches, minimum and maximum."""
    knees = np.asarray(k["knees"]["kneedle"])
    n = len(k["sorted_curves"][0])
    return {"shown": min(shown, len(k["sorted_curves"])), "images": len(knees), "mean": float(knees.mean()),
            "share": float(knees.mean() / n), "min": int(knees.min()), "max": int(knees.max())}


def stage_rows(k: dict, full: dict) -> list[dict]:
    """The test table: unpruned, stage 1 alone, both stages; accuracy per column (%) and cost."""
    return [{"run": name, "overall": 100 * r["overall"], **family_columns(r),
             "vision keep %": 100 * r["keep_rate"], "FLOPs %": 100 * r["flops_ratio"]}
            for name, r in (("unpruned", full), ("stage 1 (knee)", k["stage1_only"]),
                            ("stages 1 + 2", k["two_stage"]))]


def variant_rows(knee: dict[str, dict], full: dict[str, dict], n_layers: dict[str, int],
                 difference) -> list[dict]:
    """One row per supported model and stage-1 variant (Kneedle, each other detector, the paper's fixed
    share): cost, accuracy and `difference(record, full)`'s paired interval of the change, in points."""
    rows = []
    for m, k in knee.items():
        if "unsupported" in k:
            continue
        named = [("kneedle (default)", k["two_stage"]), *k["detectors"].items(),
                 (f"fixed {k['share']:.0%}", k["at_share"])]
        for name, r in named:
            ci = difference(r, full[m])
            rows.append({"model": m, "layers": n_layers[m], "stage 1": name,
                         "vision keep %": 100 * r["keep_rate"], "FLOPs %": 100 * r["flops_ratio"],
                         "accuracy": 100 * r["overall"], "change": 100 * ci["mean"], "lo": 100 * ci["lo"],
                         "hi": 100 * ci["hi"]})
    return rows


def stage_table(data: dict) -> pd.DataFrame:
    """`stage_rows` of the first model that can run the method, indexed by run (empty when none can)."""
    first = data["first"]
    rows = stage_rows(data["knee"][first], data["full"][first]) if first else []
    return pd.DataFrame(rows, columns=None if rows else ["run"]).set_index("run")


def variants_table(rows: list[dict], testbed: bool) -> pd.DataFrame:
    """`variant_rows` as the page's table: indexed by depth and variant on the testbed (its models
    differ in depth), by model and variant on a benchmark profile (empty when no model can run it)."""
    key = "layers" if testbed else "model"
    if not rows:
        return pd.DataFrame(columns=[key, "stage 1"]).set_index([key, "stage 1"])
    return pd.DataFrame(rows).drop(columns="model" if testbed else "layers").set_index([key, "stage 1"])


def inputs(models: list[str] | None = None) -> dict:
    """Every saved result the page reads (load-or-compute through `runs` and `claims`)."""
    from .. import claims, runs
    from . import profile_note

    models = models or runs.models()
    knee = {m: runs.cls_knee(m) for m in models}
    supported = [m for m in models if "unsupported" not in knee[m]]
    full = {m: runs.gsearch(m)["full"] for m in supported}
    n_layers = {m: runs.n_layers(m) for m in supported}
    deep = models[-1]  # the model the page's "-deep" sentence is about (the 16-layer testbed)
    return {"models": models, "testbed": runs.is_testbed(), "knee": knee,
            "first": supported[0] if supported else None, "full": full, "n_layers": n_layers,
            "variants": variant_rows(knee, full, n_layers, runs.record_difference),
            "profile_note": profile_note(),
            "longtail": claims.longtail_claim(models[0]), "cls22": claims.cls22_claim(models[0]),
            "cls22_deep": claims.cls22_claim(deep),
            "headline": claims.verdicts_md(claims.longtail_claim, claims.cls22_claim, models=models)}


def facts(data: dict) -> dict:
    """Every value the page glues, from `inputs()` (or the same structure built by hand)."""
    out = {"profile-note": data["profile_note"], "knee-unsupported": unsupported_md(data["knee"]),
           "lt-verdict": data["longtail"].verdict, "k22-verdict": data["cls22"].verdict,
           "k22-verdict-deep": data["cls22_deep"].verdict, "k22-measured-deep": data["cls22_deep"].measured,
           "cls-headline": data["headline"]}
    first = data["first"]
    if first is None:  # no model of the profile can run the method: the sentence above says why
        quoted = ("shown", "images", "mean", "share", "min", "max", "two-keep", "two-acc", "full-acc",
                  "share-fixed", "fixed-change", "fixed-lo", "fixed-hi", "fixed-keep")
        return {**out, **{f"knee-{key}": float("nan") for key in quoted}}
    k, full = data["knee"][first], data["full"][first]
    out.update({f"knee-{key}": v for key, v in knee_stats(k).items()})
    fixed = next(r for r in data["variants"] if r["model"] == first and r["stage 1"].startswith("fixed "))
    out.update({"knee-two-keep": k["two_stage"]["keep_rate"], "knee-two-acc": k["two_stage"]["overall"],
                "knee-full-acc": full["overall"], "knee-share-fixed": k["share"],
                "knee-fixed-change": float(fixed["change"]), "knee-fixed-lo": float(fixed["lo"]),
                "knee-fixed-hi": float(fixed["hi"]), "knee-fixed-keep": float(fixed["vision keep %"])})
    return out
