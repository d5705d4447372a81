"""The method-comparison table in the layout of the field's papers (SparseVLM, VisionZip, PDrop and
the main paper all report it so): methods as rows, grouped by budget, one column per benchmark,
an average and a "% of unpruned" column, then the cost columns.

On the testbed profile its task families stand in for the benchmarks; each column names the real
benchmark it is the analogue of (`ANALOGUE`). On a benchmark profile the columns are its benchmarks
under their names in the papers (`BENCHMARK_COLUMNS`), in the papers' order. As POPE is scored by
F1, the `exist` column is the F1 of the yes/no answers; every other column is accuracy. "Average"
is the mean of the family columns (the papers average their benchmark columns the same way), "% of
unpruned" that average over the unpruned model's. Built from the summary records of
`runs.methods_table` and the interleaved timings of `runs.methods_speed`, never from numbers typed
in.
"""
from __future__ import annotations

import pandas as pd

from ..experiments.profiles import BENCHMARK_NAMES


def span(lo: float, hi: float) -> str:
    """A range as the book prints it: "1.10-1.16", or one value when both ends agree (one round)."""
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


# testbed family -> the benchmark it stands in for (column header)
ANALOGUE = {
    "attribute": "attribute ~ GQA",
    "exist": "exist ~ POPE (F1)",
    "text": "text ~ TextVQA",
    "choice": "choice ~ MMBench/ScienceQA",
    "count": "count",
    "position": "position",
}
# a benchmark profile's columns: each benchmark under its name in the papers' tables, in their order
BENCHMARK_COLUMNS = {b: name + (" (F1)" if b == "pope" else "") for b, name in BENCHMARK_NAMES.items()}
UNPRUNED = "unpruned"
# MME's paper metric is a score out of 2800 (perception 2000 + cognition 800): the average takes it as
# a percentage of that, so every column enters the average on the same 0-100 scale
MME_MAX = 2800


def family_scores(record: dict) -> dict[str, float]:
    """A summary record's score per column: on the testbed accuracy (%) per family and F1 for
    `exist`; on a benchmark profile each benchmark's paper metric (%, MME its score)."""
    out = {}
    for fam, acc in record["families"].items():
        if fam in BENCHMARK_COLUMNS:
            out[BENCHMARK_COLUMNS[fam]] = acc if fam == "mme" else 100 * acc
            continue
        value = record.get("exist_f1") if fam == "exist" and record.get("exist_f1") is not None else acc
        out[ANALOGUE.get(fam, fam)] = 100 * value
    return out


def family_columns(record: dict) -> dict[str, float]:
    """A chapter table's per-family columns: on the testbed each family's accuracy (%) under its own
    name (no analogue names, no F1); on a benchmark profile `family_scores` (the papers' columns)."""
    if any(f in BENCHMARK_COLUMNS for f in record["families"]):
        return family_scores(record)
    return {f: 100 * v for f, v in record["families"].items()}

def average(scores: dict[str, float]) -> float:
    """The mean of a row's columns (MME as a percentage of its maximum score)."""
    return sum(100 * v / MME_MAX if col == BENCHMARK_COLUMNS["mme"] else v
               for col, v in scores.items()) / len(scores)


def paper_layout(records: list[dict], speed: dict | None = None, group=None) -> pd.DataFrame:
    """Methods x benchmark-analogue columns, indexed by (budget, method), the unpruned model first.

    `records`: summary records (one "full" record, the rest with a budget; records with an "error"
    are left out: the chapter lists them). `speed`: `runs.methods_speed()`'s "budgets" mapping, or
    any mapping of row-group name -> timed rows. `group(record) -> (label, speed key)` names a
    record's row group (default: its budget); the field tables group by the keep rate they match."""
    group = group or (lambda r: (f"{r['budget']:g}", str(r["budget"])))
    timed = {}
    for budget, rows in (speed or {}).items():
        for r in rows:
            timed[(budget, r["name"])] = r
    full = next(r for r in records if r.get("method") == "full")
    reference = None
    rows = []
    for r in [full] + [r for r in records if r.get("method") != "full" and "overall" in r]:
        scores = family_scores(r)
        mean = average(scores)
        reference = mean if reference is None else reference
        label, key = ("1", None) if r["method"] == "full" else group(r)
        t = timed.get((key, r["method"]))
        spread = span(*t["speedup_range"]) if t else None
        rows.append({"budget": label,
                     "method": UNPRUNED if r["method"] == "full" else r["method"], **scores,
                     "average": mean, "% of unpruned": 100 * mean / reference,
                     "decoder FLOPs %": 100 * r["flops_ratio"],
                     "speedup": t["speedup"] if t else None,
                     "speedup range": spread})
    return pd.DataFrame(rows).set_index(["budget", "method"])
