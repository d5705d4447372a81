"""Saving the book's figures and tables, named by their MyST label.

Figures: one PNG + one SVG per figure. In a notebook::

    fig, ax = plt.subplots()
    ...
    save_figure(fig, "fig-gsearch-curve")

writes book/figures/fig-gsearch-curve.png and .svg (results/smoke/figures/ when VTR_SMOKE=1,
so a smoke run never overwrites the real figures), glues the figure under the same name for
myst-nb and closes it. Show it in the notebook's markdown, numbered and citable::

    ```{glue:figure} fig-gsearch-curve
    :name: fig-gsearch-curve

    Caption.
    ```

Tables: one CSV per table. In a notebook::

    save_table(df, "tab-gsearch-budgets", formats={"accuracy": "{:.1%}"})

writes book/figures/tab-gsearch-budgets.csv (the same smoke rule as figures) with the values of
`df` as they are, and glues the table, formatted for reading, under the same name. Show it in the
notebook's markdown, numbered ("Table 2"), captioned and citable, with the book's `glue:table`
directive (book/_ext/vtr_tables.py); its MyST name is the label, so {numref}`tab-gsearch-budgets`
and {ref}`tab-gsearch-budgets` work from any chapter::

    ```{glue:table} tab-gsearch-budgets

    Caption.
    ```

Both kinds are listed, with their files and a BibTeX entry, on the book's "Figures and tables"
page. Labels start with `fig-` or `tab-` by convention.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..paths import REPO, results_dir, smoke

_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def figures_dir() -> Path:
    """book/figures (full run of the testbed profile), <results>/figures (a smoke run, or another
    profile: its figures never replace the published ones), or $VTR_FIGURES when set."""
    if "VTR_FIGURES" in os.environ:
        return Path(os.environ["VTR_FIGURES"])
    other = (os.environ.get("VTR_PROFILE") or "testbed") != "testbed"
    return results_dir() / "figures" if smoke() or other else REPO / "book" / "figures"


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and "IPython" in sys.modules


class SavedFiles(dict):
    """What save_figure and save_table return: {"png": path, "svg": path} or {"csv": path}.

    An ordinary dict, except that Jupyter does not display it: a notebook cell ending with
    `save_figure(...)` shows nothing instead of the paths' repr (print it to show them)."""

    def _ipython_display_(self):
        pass


def save_figure(fig, label: str, *, glue: bool | None = None, close: bool = True) -> dict[str, Path]:
    """Write `fig` as <figures_dir>/<label>.png (150 dpi) and .svg; return both paths
    (a `SavedFiles` dict, which a notebook does not display).

    `label` is the figure's MyST name (lowercase letters, digits, hyphens; e.g. "fig-book-check").
    `glue`: glue the figure for myst-nb under `label` (default: when running in a Jupyter kernel).
    `close`: close the figure afterwards, so the notebook does not also show it inline.
    The files are byte-stable across runs (no timestamps, fixed SVG ids).
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    if not _LABEL.match(label):
        raise ValueError(f"figure label {label!r}: use lowercase letters, digits and hyphens")
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / f"{label}.png", "svg": out / f"{label}.svg"}
    with mpl.rc_context({"svg.hashsalt": label, "svg.fonttype": "path"}):
        fig.savefig(paths["png"], dpi=150, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(paths["svg"], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    if glue if glue is not None else _in_kernel():
        from myst_nb import glue as _glue

        _glue(label, fig, display=False)
    if close:
        plt.close(fig)
    return SavedFiles(paths)


# The mime type under which save_table glues a table; book/_ext/vtr_tables.py reads it.
TABLE_MIME = "application/vnd.vtr.table+json"


def _cell_text(value, fmt) -> str:
    import math
    import numbers

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, numbers.Number) for v in value):
        # a range such as a speedup's [lo, hi]: "1.41-1.57", never Python's list
        return "-".join(_cell_text(v, fmt if fmt is not None else "{:.3g}") for v in value)
    if fmt is None:
        return str(value)
    return fmt(value) if callable(fmt) else fmt.format(value)


# The column that names a table's rows: shown first (the book freezes a wide table's first
# column while the others scroll), its method names as readers know them (vtr/catalogue.py).
KEY_COLUMN = "method"
# columns whose cells start with a method's code name ("fastv 0.125": a plan at a budget)
NAMED_COLUMNS = (KEY_COLUMN, "plan")


def _method_text(value) -> str:
    from ..catalogue import display_label

    return display_label(value) if isinstance(value, str) else str(value)


def table_payload(df, label: str, caption: str | None = None, *, formats=None,
                  float_format="{:.3f}") -> dict:
    """What save_table glues: the table's label, caption, column names, and every cell as the
    text to show (columns of numbers are marked for right alignment). A `method` column comes
    first; it and a `plan` column show display names; a cell holding a list of numbers shows as a
    range."""
    import numbers

    import pandas as pd

    formats = dict(formats or {})
    unknown = sorted(set(formats) - {str(c) for c in df.columns})
    if unknown:
        raise ValueError(f"table {label!r}: formats for unknown columns {unknown}")
    names = [str(c) for c in df.columns]
    if KEY_COLUMN in names:
        df = df[[KEY_COLUMN] + [c for c in df.columns if str(c) != KEY_COLUMN]]
    columns, cells, numeric = [], [], []
    for name in df.columns:
        col = df[name]
        is_num = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        fmt = formats.get(str(name))
        if fmt is None and str(name) in NAMED_COLUMNS:
            fmt = _method_text
        if fmt is None and pd.api.types.is_float_dtype(col):
            fmt = float_format
        columns.append(str(name))
        numeric.append(bool(is_num))
        # a format string applies to the numbers of a column (a text cell stays as it is)
        cells.append([_cell_text(v, fmt if callable(fmt) or isinstance(v, (numbers.Number, list, tuple))
                                 else None)
                      for v in col.tolist()])
    rows = [list(r) for r in zip(*cells)] if cells else []
    return {"label": label, "caption": caption or "", "columns": columns, "numeric": numeric,
            "rows": rows}


class _GluedTable:
    """Display object of a glued table: the payload under TABLE_MIME, a one-line text form."""

    def __init__(self, payload: dict):
        self.payload = payload

    def _repr_mimebundle_(self, include=None, exclude=None):
        n, m = len(self.payload["rows"]), len(self.payload["columns"])
        return {TABLE_MIME: self.payload, "text/plain": f"table {self.payload['label']} ({n} x {m})"}


def _flat(df):
    """`df` with a meaningful index turned into leading columns and multi-level column names
    joined by spaces (what the CSV and the book's table show)."""
    import pandas as pd

    out = df.copy()
    if not (isinstance(out.index, pd.RangeIndex) and out.index.name is None
            and out.index.start == 0 and out.index.step == 1):
        out = out.reset_index()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(p) for p in c if str(p) != "").strip() for c in out.columns]
    out.columns = [str(c) for c in out.columns]
    if len(set(out.columns)) != len(out.columns):
        raise ValueError(f"table columns are not unique: {list(out.columns)}")
    return out


def save_table(df, label: str, caption: str | None = None, *, formats=None,
               float_format: str = "{:.3f}", glue: bool | None = None) -> dict[str, Path]:
    """Write the DataFrame `df` as <figures_dir>/<label>.csv and glue it for the book's table.

    `label` is the table's MyST name (lowercase letters, digits, hyphens; e.g. "tab-book-check").
    The CSV holds `df`'s values unrounded, in the book table's column order; a non-default index
    becomes the first column(s), a `method` column comes first.
    `caption`: used when the `glue:table` directive has no caption of its own (prefer the
    directive's: it may use roles such as {glue:text} and {cite}).
    `formats`: column name -> format string ("{:.1%}") or function, for the book's table only;
    other float columns use `float_format`, everything else is shown as str(value).
    `glue`: glue the table for myst-nb under `label` (default: when running in a Jupyter kernel).
    Returns {"csv": path} (a `SavedFiles` dict, which a notebook does not display).
    The CSV is byte-stable across runs for the same values.
    """
    if not _LABEL.match(label):
        raise ValueError(f"table label {label!r}: use lowercase letters, digits and hyphens")
    flat = _flat(df)
    if KEY_COLUMN in flat.columns:  # the CSV's columns in the book table's order
        flat = flat[[KEY_COLUMN] + [c for c in flat.columns if c != KEY_COLUMN]]
    payload = table_payload(flat, label, caption, formats=formats, float_format=float_format)
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{label}.csv"
    flat.to_csv(path, index=False, lineterminator="\n")
    if glue if glue is not None else _in_kernel():
        from myst_nb import glue as _glue

        _glue(label, _GluedTable(payload), display=False)
    return SavedFiles(csv=path)
