"""The method-comparison table in the layout of the field's papers (SparseVLM, VisionZip, PDrop and
the main paper all report it so): methods as rows, grouped by budget, one column per benchmark,
an average and a "% of unpruned" column, then the cost columns.

The testbed's task families stand in for the benchmarks; each column names the real benchmark it
is the analogue of (`ANALOGUE`). As POPE is scored by F1, the `exist` column is the F1 of the
yes/no answers; every other column is accuracy. "Average" is the mean of the family columns (the
papers average their benchmark columns the same way), "% of unpruned" that average over the
unpruned model's. Built from the summary records of `runs.methods_table` and the interleaved
timings of `runs.methods_speed`, never from numbers typed in.
"""
from __future__ import annotations

import pandas as pd

# testbed family -> the benchmark it stands in for (column header)
ANALOGUE = {
    "attribute": "attribute ~ GQA",
    "exist": "exist ~ POPE (F1)",
    "text": "text ~ TextVQA",
    "choice": "choice ~ MMBench/ScienceQA",
    "count": "count",
    "position": "position",
}
UNPRUNED = "unpruned"


def family_scores(record: dict) -> dict[str, float]:
    """A summary record's score per family column (%): accuracy, and F1 for `exist`."""
    out = {}
    for fam, acc in record["families"].items():
        value = record.get("exist_f1") if fam == "exist" and record.get("exist_f1") is not None else acc
        out[ANALOGUE.get(fam, fam)] = 100 * value
    return out


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
        average = sum(scores.values()) / len(scores)
        reference = average if reference is None else reference
        label, key = ("1", None) if r["method"] == "full" else group(r)
        t = timed.get((key, r["method"]))
        rows.append({"budget": label,
                     "method": UNPRUNED if r["method"] == "full" else r["method"], **scores,
                     "average": average, "% of unpruned": 100 * average / reference,
                     "decoder FLOPs %": 100 * r["flops_ratio"],
                     "speedup": t["speedup"] if t else None,
                     "speedup range": f"{t['speedup_range'][0]:.2f}-{t['speedup_range'][1]:.2f}" if t else None})
    return pd.DataFrame(rows).set_index(["budget", "method"])
