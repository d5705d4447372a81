"""Where things live: the repository's data folder, results and the shipped testbed."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("VTR_DATA", REPO / "data"))


def testbed_model_dir() -> Path:
    return data_dir() / "testbed" / "model"


def benchmark_dir(name: str = "testbed") -> Path:
    return data_dir() / "benchmarks" / name


def results_dir() -> Path:
    """Saved results the book is built from; smoke runs write to a separate folder."""
    default = REPO / "results" / ("smoke" if smoke() else "full")
    return Path(os.environ.get("VTR_RESULTS", default))


def smoke() -> bool:
    return os.environ.get("VTR_SMOKE", "") not in ("", "0")
