"""Load a model by name: a shipped testbed (`testbed`, `testbed-deep`) or a local HuggingFace folder."""
from __future__ import annotations

from pathlib import Path

from .errors import InputError


def load(spec: str, **kwargs):
    """-> runner (with `.model`). `spec`: a shipped testbed's name (`vtr.paths.TESTBEDS`) or a path to
    a local checkpoint folder."""
    from .paths import TESTBEDS, testbed_model_dir

    if spec in TESTBEDS:
        from .testbed.model import load_testbed
        from .testbed.runner import TestbedRunner

        model, _ = load_testbed(testbed_model_dir(spec))
        return TestbedRunner(model, name=spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"model {spec!r}: expected {' or '.join(TESTBEDS)} or a local checkpoint folder; "
                                f"{path} does not exist")
    from .runners.hf import load_runner

    return load_runner(path, **kwargs)


def load_split(model_spec: str, split: str, limit: int | None = None, benchmark: str | None = None, data: str | None = None):
    """The evaluation split: the testbed's own splits, or a real benchmark read from `data`."""
    if benchmark in (None, "testbed"):
        from .testbed.data import load as load_testbed_split

        return load_testbed_split(split).subset(limit)
    from .benchmarks import get_reader

    if data is None:
        raise InputError(f"--benchmark {benchmark} needs --data pointing at the benchmark's folder")
    split = get_reader(benchmark)(data, limit=limit)
    split.limit = limit  # for the run's fingerprint (`vtr.fingerprint.split_fingerprint`)
    return split
