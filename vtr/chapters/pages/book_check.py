"""The book-check page: decoder prefill FLOPs when every vision token is kept up to layer K and a
fraction r of them from K on (FastV's schedule; VTW's when r = 0), for a LLaVA-1.5-7B-sized decoder.

The page needs no model, so it reads the same on every profile. `flops_frame` computes the
curves the figure plots, `flops_table` the table's rows, `facts` the numbers its captions quote.
"""
from __future__ import annotations

import pandas as pd

from ...flops import DecoderShape, flops_ratio
from ...plan import Plan

# LLaVA-1.5-7B's decoder (Vicuna-7B) and its 576 vision tokens, with a 64-token question
LLAVA_7B = DecoderShape(hidden=4096, intermediate=11008, n_layers=32)
N_VISION, N_TEXT = 576, 64
RATES = (0.0, 0.25, 0.5)
COLUMN = "prefill FLOPs / unpruned"


def drop_layers(shape: DecoderShape = LLAVA_7B, smoke: bool = False) -> range:
    """The drop layers K computed: every layer, or every 8th in a smoke build."""
    return range(0, shape.n_layers + 1, 8 if smoke else 1)


def flops_frame(layers: range, rates=RATES, shape: DecoderShape = LLAVA_7B, n_vision: int = N_VISION,
                n_text: int = N_TEXT) -> pd.DataFrame:
    """One row per (kept fraction r, drop layer K): the FLOPs ratio of `Plan.drop_at(K, round(r N))`.
    The kept fraction is a two-decimal string, the hue of the figure."""
    return pd.DataFrame([
        {"drop layer K": k, "kept fraction r": f"{r:.2f}",
         COLUMN: flops_ratio(Plan.drop_at(shape.n_layers, n_vision, k, round(r * n_vision)), n_text, shape)}
        for r in rates for k in layers])


def flops_table(df: pd.DataFrame, every: int) -> pd.DataFrame:
    """The table of `flops_frame`: drop layers as rows (every `every`-th computed one), one column
    "r = ..." per kept fraction."""
    return (df.pivot(index="drop layer K", columns="kept fraction r", values=COLUMN)
            .iloc[::every].rename(columns=lambda r: f"r = {r}"))


def facts(df: pd.DataFrame, layers: range, every: int) -> dict:
    """The numbers the page quotes: the table's layer step, and the cost of keeping a quarter of the
    tokens from layer 0 on and of dropping all of them after layer 16."""
    at = df.set_index(["drop layer K", "kept fraction r"])[COLUMN]
    return {"book-check-table-step": layers.step * every,
            "book-check-k0-r25": float(at[(0, "0.25")]),
            "book-check-k16-r0": float(at[(16, "0.00")])}


def shown(path) -> str:
    """A path as the page prints it: relative to the repository (the page never shows where the
    building machine keeps its checkout); a path outside it by its last two parts."""
    import os
    from pathlib import Path

    from ...paths import REPO

    path = Path(os.path.abspath(path))  # symlinks kept: the venv's python is .venv/bin/python
    try:
        return path.relative_to(Path(os.path.abspath(REPO))).as_posix() or "."
    except ValueError:
        return ".../" + "/".join(path.parts[-2:])
