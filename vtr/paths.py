"""Where things live: the repository's data folder, results and the shipped testbed."""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from .errors import InputError

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
    """Saved results the book is built from: results/<profile>/<full|smoke>/<inputs stamp>.

    Each profile (`VTR_PROFILE`: testbed, paper, tiny) has its own folder and never reads another's.
    The stamp hashes the code and the shipped weights, so results computed by other code are never
    reused (resuming an interrupted run reuses only results of the same code)."""
    if "VTR_RESULTS" in os.environ:
        return Path(os.environ["VTR_RESULTS"])
    profile = os.environ.get("VTR_PROFILE") or "testbed"
    return REPO / "results" / profile / ("smoke" if smoke() else "full") / inputs_stamp()


# Code that computes no saved result of the book (the CLI, adapters, figure files, the verdict rules
# and the definitions read saved results): changing it keeps them.
NOT_RESULT_CODE = ("vtr/cli/", "vtr/integrations/", "vtr/chapters/figures.py", "vtr/chapters/claims.py",
                   "vtr/chapters/definitions.py")


@lru_cache(maxsize=1)
def inputs_stamp() -> str:
    h = hashlib.sha256()
    code = [p for p in sorted(REPO.glob("vtr/**/*.py"))
            if not any(p.relative_to(REPO).as_posix().startswith(x) for x in NOT_RESULT_CODE)]
    files = code + [REPO / "requirements.lock"] + \
        sorted(p for d in TESTBEDS.values() for p in (data_dir() / "testbed" / d).glob("*.safetensors"))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def smoke() -> bool:
    return os.environ.get("VTR_SMOKE", "") not in ("", "0")
