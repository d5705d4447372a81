"""Chapter 8's implementation comparison and its paper-scale speed table.

`published_strategies()` times FastV as its published code runs it (eager attention) and as
hook-based toolkits run it (layer K-1 re-run for its attention weights) beside vtr's engine, all
keeping the same tokens (`vtr.published.compare`), on the testbed and on a random-init LLaVA of
width 512 at 576 vision tokens; computed once and saved (the load-or-compute `cached` of
`vtr.chapters.runs`). `paper_speed()` reads the GPU measurement `vtr bench paper` writes under
`data/` when one is there (it never runs in a book build: it needs a GPU).
"""
from __future__ import annotations

import json

import pandas as pd

from ..experiments.sizes import size
from ..paths import data_dir

KEEPS = (0.5, 0.25, 0.125)
FASTV_LAYER = 2  # FastV's K
SIZED_TOKENS = 576  # LLaVA-1.5's vision tokens, on the random-init model of width 512
PAPER_SPEED = "paper_speed/paper_speed.json"  # under data/: what `vtr bench paper` writes by default
STRATEGY_NAMES = {"vtr": "vtr engine (SDPA)", "fastv_eager": "FastV's code (eager)",
                  "rerun_hook": "hook re-running layer K-1"}

# the measurement records' fields as a table's readers read them (`readable`)
COLUMN_NAMES = {"keep": "keep rate", "image_size": "image size (px)", "n_vision": "vision tokens",
                "flops_ratio": "FLOPs ratio", "speedup_range": "speedup range",
                "kv_bytes_ratio": "KV bytes ratio", "prefill_ms_unpruned": "prefill ms, unpruned",
                "prefill_ms": "prefill ms, pruned"}


def readable(df: pd.DataFrame, first: str | None = None) -> pd.DataFrame:
    """`df` for a book table: record fields renamed (`COLUMN_NAMES`, any other snake_case name with
    spaces) and the column `first` (the one naming each row) moved to the front."""
    if first is not None:
        df = df[[first] + [c for c in df.columns if c != first]]
    return df.rename(columns=lambda c: COLUMN_NAMES.get(c, str(c).replace("_", " ")))


def published_strategies() -> dict:
    """{model label: `vtr.published.compare` result} on the profile's first model ("testbed" on the
    testbed profile) and the sized random model."""
    from .runs import cached, first_model, is_testbed

    def compute():
        from .. import tiny
        from ..experiments import runners
        from ..published import compare
        from ..timing import device_info

        batch, repeats, warmup = size("published_batch"), size("published_repeats"), size("published_warmup")
        runner, split = runners.get("test", first_model())
        inputs = runner.inputs(split.samples[:batch], split)
        label = "testbed" if is_testbed() else first_model()
        out = {label: compare(runner.model, inputs, runner.n_vision, list(KEEPS), FASTV_LAYER, repeats,
                              warmup)}
        hidden = size("published_hidden")
        model = tiny.build_sized(image_size=8 * round(SIZED_TOKENS ** 0.5), hidden=hidden)
        inp = tiny.make_inputs(model, "llava", batch=batch, text_lengths=[8 + i % 8 for i in range(batch)])
        n = tiny.n_image_tokens(model, "llava")
        out[f"random-init LLaVA, width {hidden}"] = compare(model, inp, n, list(KEEPS), FASTV_LAYER, repeats,
                                                            warmup)
        return {"models": out, "device": device_info("cpu"), "batch": batch}
    return cached("efficiency_published", compute)


def published_table(result: dict) -> pd.DataFrame:
    """One row per (model, keep rate): each strategy's speedup, efficiency and peak-memory ratio
    against the unpruned SDPA model, and whether all kept the same tokens."""
    rows = []
    for label, res in result["models"].items():
        for keep in KEEPS:
            row = {"model": label, "vision tokens": res["n_vision"], "keep": keep}
            for r in res["rows"]:
                if r["keep"] == keep:
                    name = STRATEGY_NAMES[r["strategy"]]
                    row[f"{name}: speedup"] = r["speedup"]
                    row[f"{name}: efficiency"] = r["efficiency"]
                    row[f"{name}: peak memory"] = r["prefill_peak_ratio"]
                    row["same tokens"] = r["same_tokens"]
            rows.append(row)
    return pd.DataFrame(rows)


def paper_speed() -> dict | None:
    """The saved paper-scale GPU measurement (`vtr bench paper`), or None when there is none."""
    path = data_dir() / PAPER_SPEED
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    result["path"] = str(path)
    return result


def paper_speed_table(result: dict) -> pd.DataFrame:
    from ..paper_speed import table

    return pd.DataFrame(table(result))


def paper_speed_frame(result: dict | None) -> pd.DataFrame:
    """The paper-scale speed table chapter 8 shows: `paper_speed_table(result)`, or, without a GPU
    measurement (`result` None), one row saying so (a numbered table needs a table there)."""
    if result is None:
        return pd.DataFrame({"note": ["no GPU measurement in this build: data/paper_speed/paper_speed.json "
                                      "is missing"]})
    readable = {"n_layers": "decoder layers", "n_vision": "vision tokens"}
    return paper_speed_table(result).rename(columns=readable)


def paper_speed_source(result: dict | None) -> str:
    """The sentence above that table: where and when the measurement was made, or that none exists."""
    if result is None:
        return ("No GPU measurement exists in this build: `data/paper_speed/paper_speed.json` is missing, "
                "so no paper-scale speed is reported here.")
    dev = result["device"] or {}
    return (f"Measured on {dev.get('device_name', '?')} ({dev.get('device', '?')}), {result['date']}, "
            f"vtr {result['vtr_version']}: `{result['command']}`.")
