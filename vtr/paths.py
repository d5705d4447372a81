"""Where things live: the repository's data folder, results and the shipped testbed."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import InputError
from .fingerprint import files_digest, listed_files

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("VTR_DATA", REPO / "data"))


# The shipped testbed checkpoints by model name: the same generator, tokenizer, task families and
# vision tower; decoders of 8 and 16 Llama layers.
TESTBEDS = {"testbed": "model", "testbed-deep": "deep"}


def testbed_model_dir(name: str = "testbed") -> Path:
    """Folder of a shipped testbed checkpoint (`TESTBEDS`), e.g. data/testbed/deep for testbed-deep."""
    if name not in TESTBEDS:
        raise InputError(f"unknown testbed {name!r}: expected one of {', '.join(TESTBEDS)}")
    return data_dir() / "testbed" / TESTBEDS[name]


def benchmark_dir(name: str = "testbed") -> Path:
    return data_dir() / "benchmarks" / name


def results_dir() -> Path:
    """Saved results the book is built from: results/<profile>/<full|smoke>/<inputs fingerprint>.

    Each profile (`VTR_PROFILE`: testbed, paper, tiny) has its own folder and never reads another's.
    The fingerprint hashes the code and the shipped weights, so results computed by other code are
    never reused (resuming an interrupted run reuses only results of the same code)."""
    if "VTR_RESULTS" in os.environ:
        return Path(os.environ["VTR_RESULTS"])
    profile = os.environ.get("VTR_PROFILE") or "testbed"
    return REPO / "results" / profile / ("smoke" if smoke() else "full") / inputs_fingerprint()


@lru_cache(maxsize=1)
def inputs_fingerprint() -> str:
    """Digest of what changes the book's saved results (the files `vtr/fingerprint.txt` marks as
    `results`: the code, the lock file and the shipped weights, these from `data_dir()`)."""
    return files_digest(listed_files(("results",), REPO, data_dir())).hexdigest()[:12]


def smoke() -> bool:
    return os.environ.get("VTR_SMOKE", "") not in ("", "0")
