"""Chapter `later-benchmarks`: what benchmark studies published after the three papers found, checked
on the book's engine and models. Every value the page glues and every table it saves, from the
load-or-compute results of `vtr.chapters.runs` (`field_table`, `batch_invariance`) and the rules
of `vtr.chapters.benchmark_claims`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...analysis import paired_bootstrap
from ...catalogue import display
from ...findings import equivalent_tokens
from .. import benchmark_claims as bc
from .gsearch import labels

MARKDOWN = ("profile-note", "later-verdicts")  # facts glued as MyST (the others are plain values)


def inputs(models: list[str] | None = None) -> dict:
    """Every saved result the page reads, per model (`benchmark_claims.measured`), with the rules'
    verdicts and each model's label (its decoder layers, or its name)."""
    from .. import runs
    from . import profile_note

    models = models or runs.models()
    data = {m: bc.measured(m) for m in models}
    errors = {m: [r for r in runs.field_table(m)["keep"] if "error" in r] for m in models}
    return {"models": models, "data": data, "errors": errors,
            "verdicts": {m: bc.later_claims(m, data[m]) for m in models},
            "batch_errors": {m: runs.batch_invariance(m)["errors"] for m in models},
            "batch_sizes": runs.BATCH_SIZES, "batch_budget": runs.BATCH_BUDGET,
            "labels": labels({m: runs.n_layers(m) for m in models}), "profile_note": profile_note()}


def budget_label(b: float) -> str:
    """A field budget as the tables show it: the mean keep rate with LLaVA-1.5's token count."""
    return f"{b:.1%} ({round(b * 576)} of 576)"


def interval(ci: dict) -> str:
    """A paired difference in points with its 95% interval: "-1.2 (-3.0 to +0.5)"."""
    return f"{100 * ci['mean']:+.1f} ({100 * ci['lo']:+.1f} to {100 * ci['hi']:+.1f})"


def against(ci: dict) -> str:
    """How a method compares with the reference of a paired interval (method - reference)."""
    return "better" if ci["lo"] > 0 else "worse" if ci["hi"] < 0 else "not different"


def named(label: dict, model: str) -> str:
    """A model as the tables name it: "8 layers" on the testbeds, else the model's name."""
    return f"{label[model]} layers" if isinstance(label[model], int) else model


def _columns(label: dict, model: str, names: tuple[str, ...]) -> list[str]:
    return [f"{named(label, model)}: {n}" for n in names]


def _indexed(rows: dict, names: list[str], empty: str) -> pd.DataFrame:
    """`rows` ({index tuple: {column: value}}) as a frame indexed by `names`, or one row saying
    `empty` when nothing could be compared (a glued table needs a table there)."""
    if not rows:
        return pd.DataFrame({"note": [empty]})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = names
    return out


def random_table(data: dict, label: dict, methods=bc.ATTENTION_METHODS, random: str = "random",
                 ) -> pd.DataFrame:
    """Every attention-based method minus random (points, paired interval on the same questions) and
    how it compares, per field budget (rows) and model (column pairs)."""
    rows = {}
    for m, d in data.items():
        c = d["correct"]
        for b in sorted({b for _, b in c}, reverse=True):
            for name in methods:
                if (name, b) not in c or (random, b) not in c:
                    continue
                ci = paired_bootstrap(c[(name, b)], c[(random, b)])
                diff, verdict = _columns(label, m, ("minus random", "vs random"))
                rows.setdefault((budget_label(b), display(name)), {}).update({diff: interval(ci),
                                                                              verdict: against(ci)})
    return _indexed(rows, ["budget", "method"], "no budget where random and an attention-based method ran")


def downsample_table(data: dict, label: dict, methods=bc.ADVANCED_METHODS + ("pool",),
                     simple: str = "downsample") -> pd.DataFrame:
    """Downsampling against every other method at each field budget: the equivalent tokens each
    spends and downsampling minus the method (points, paired interval), per model."""
    rows = {}
    for m, d in data.items():
        recs = {(r["method"], r["field"]): r for r in d["records"] if "field" in r}
        for (name, b), r in sorted(recs.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
            if name not in methods or (simple, b) not in recs:
                continue
            ci = paired_bootstrap(d["correct"][(simple, b)], d["correct"][(name, b)])
            e_simple, e_method = equivalent_tokens(recs[(simple, b)]), equivalent_tokens(r)
            cols = _columns(label, m, ("tokens (downsample / method)", "downsample minus method"))
            rows.setdefault((budget_label(b), display(name)), {}).update(
                {cols[0]: f"{e_simple:.1f} / {e_method:.1f}", cols[1]: interval(ci)})
    return _indexed(rows, ["budget", "method"], f"{display(simple)} could not run on any model here")


def family_table(data: dict, label: dict) -> pd.DataFrame:
    """Per model and field budget, each family's change (pruned - unpruned accuracy, points, mean
    over every method that ran there); "*" marks the families answered from the image."""
    rows = []
    for m, d in data.items():
        full = d["full"]["families"]
        pruned = [r for r in d["records"] if "field" in r and r.get("families")]
        for b in sorted({r["field"] for r in pruned}, reverse=True):
            rs = [r for r in pruned if r["field"] == b]
            row = {"model": named(label, m), "budget": budget_label(b)}
            for f in full:
                name = f"{f}*" if f in d["families"] else f
                row[name] = 100 * (float(np.mean([r["families"][f] for r in rs])) - full[f])
            rows.append(row)
    if not rows:
        return pd.DataFrame({"note": ["no pruned record at the field's budgets"]})
    return pd.DataFrame(rows).set_index(["model", "budget"])


def equivalent_table(data: dict, label: dict) -> pd.DataFrame:
    """Every plan at the field's budgets: mean keep rate (%), equivalent tokens and decoder FLOPs (%
    of unpruned), per model."""
    rows = {}
    for m, d in data.items():
        for r in d["records"]:
            if "field" not in r:
                continue
            keep, tokens, flops = _columns(label, m, ("keep %", "equivalent tokens", "FLOPs %"))
            rows.setdefault((budget_label(r["field"]), display(r["method"])), {}).update(
                {keep: 100 * r["keep_rate"], tokens: equivalent_tokens(r), flops: 100 * r["flops_ratio"]})
    return _indexed(rows, ["budget", "method"], "no method ran at the field's budgets")


def batch_table(data: dict, label: dict) -> pd.DataFrame:
    """Per policy and model: the answers that differ between batch 1 and batch 64 and the largest
    first-token logit difference."""
    rows = {}
    for m, d in data.items():
        for name, res in d["batch"].items():
            changed, moved = _columns(label, m, ("answers changed", "largest logit difference"))
            shown = {"unpatched": "unpatched model", "full": "keep-all hooks"}.get(name, display(name))
            rows.setdefault(shown, {}).update({changed: int(sum(res["differing"].values())),
                                               moved: max(res["max_logit_diff"].values(), default=0.0)})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "policy"
    return out


def not_run_rows(errors: dict, label: dict, batch_errors: dict | None = None,
                 batch_budget: float | None = None) -> list[dict]:
    """What could not run, per model, as rows of `pages.not_run_table`: the methods that could not
    meet a field budget (`errors`: model -> error records) and those left out of the batch
    comparison (`batch_errors`: model -> {method: reason}, at keep rate `batch_budget`)."""
    from . import REASON

    rows = [{"testbed": named(label, m), "method": display(r["method"]), "budget": budget_label(r["budget"]),
             REASON: r["error"]} for m, rs in errors.items() for r in rs]
    rows += [{"testbed": named(label, m), "method": display(name),
              "budget": f"{batch_budget:.1%} (batch comparison)", REASON: why}
             for m, found in (batch_errors or {}).items() for name, why in found.items()]
    return rows


def accuracy_points(data: dict, label: dict) -> pd.DataFrame:
    """Every method's test accuracy (%) against the equivalent tokens it spent, per model and field
    budget (for the chapter's figure)."""
    return pd.DataFrame([{"model": named(label, m), "method": display(r["method"]), "budget": r["field"],
                          "equivalent tokens": equivalent_tokens(r), "accuracy %": 100 * r["overall"]}
                         for m, d in data.items() for r in d["records"] if "field" in r])


def verdict_table(verdicts: dict, label: dict) -> pd.DataFrame:
    """The rules' verdicts: a row per claim (its source and the paper's number), a verdict column per
    model (the measurements are listed under the table)."""
    models = list(verdicts)
    rows = []
    for i, first in enumerate(verdicts[models[0]]):
        row = {"source": first.paper, "claim": first.claim, "paper": first.paper_value}
        for m in models:
            row[_columns(label, m, ("verdict",))[0]] = verdicts[m][i].verdict
        rows.append(row)
    return pd.DataFrame(rows)


def verdicts_md(verdicts: dict, label: dict) -> str:
    """What each rule measured, per model, as a MyST list under the verdict table."""
    models = list(verdicts)
    lines = []
    for i, first in enumerate(verdicts[models[0]]):
        parts = [f"{named(label, m)}: {verdicts[m][i].measured} "
                 f"(**{verdicts[m][i].verdict}**)" for m in models]
        lines.append(f"- *{first.claim}*: " + "; ".join(parts))
    return "\n".join(lines)


def facts(d: dict) -> dict:
    """Every value the page glues, from `inputs()`."""
    data, label, models = d["data"], d["labels"], d["models"]
    out = {"profile-note": d["profile_note"], "later-verdicts": verdicts_md(d["verdicts"], label)}
    first = models[0]
    batch = data[first]["batch"]
    out["later-batch-policies"] = len(batch)
    out["later-batch-changed"] = int(sum(sum(r["differing"].values()) for m in models
                                         for r in data[m]["batch"].values()))
    out["later-batch-n"] = next(iter(batch.values()))["n"]
    out["later-n-errors"] = sum(len(v) for v in d["errors"].values())
    out["later-batch-large"] = d["batch_sizes"][-1]
    out["later-batch-budget"] = d["batch_budget"]
    return out
