"""Saving the book's figures: one PNG + one SVG per figure, named by its MyST label.

In a notebook::

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
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..paths import REPO, results_dir, smoke

_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def figures_dir() -> Path:
    """book/figures (full run), <results>/figures (smoke run), or $VTR_FIGURES when set."""
    if "VTR_FIGURES" in os.environ:
        return Path(os.environ["VTR_FIGURES"])
    return results_dir() / "figures" if smoke() else REPO / "book" / "figures"


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and "IPython" in sys.modules


def save_figure(fig, label: str, *, glue: bool | None = None, close: bool = True) -> dict[str, Path]:
    """Write `fig` as <figures_dir>/<label>.png (150 dpi) and .svg; return both paths.

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
    return paths
