"""Load a model by name: a shipped testbed (`testbed`, `testbed-deep`), a local HuggingFace folder, or
`arch:<name>`, a published architecture with random weights for speed and memory (`vtr.archs`)."""
from __future__ import annotations

from pathlib import Path

from .errors import InputError


def load(spec: str, **kwargs):
    """-> runner (with `.model`). `spec`: a shipped testbed's name (`vtr.paths.TESTBEDS`) or a path to
    a local checkpoint folder."""
    from . import timeline

    watch = timeline.Stopwatch()
    runner = _load(spec, **kwargs)
    timeline.record("load", model=str(spec), seconds=watch.total())
    return runner


def _load(spec: str, **kwargs):
    from .paths import TESTBEDS, testbed_model_dir

    if spec in TESTBEDS:
        from .testbed.model import load_testbed
        from .testbed.runner import TestbedRunner

        model, _ = load_testbed(testbed_model_dir(spec))
        return TestbedRunner(model, name=spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"model {spec!r}: expected {' or '.join(TESTBEDS)} or a local checkpoint "
                                f"folder; {path} does not exist")
    from .runners.hf import load_runner

    return load_runner(path, **kwargs)


def load_split(model_spec: str, split: str, limit: int | None = None, benchmark: str | None = None,
               data: str | None = None):
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


DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(name: str, device: str):
    """`--dtype`: auto is bfloat16 on a GPU (what the papers time) and float32 on CPU."""
    import torch

    if name not in DTYPES:
        raise InputError(f"--dtype {name}: expected one of {', '.join(DTYPES)}")
    if name == "auto":
        name = "bfloat16" if str(device).startswith("cuda") else "float32"
    return getattr(torch, name)


def resolve_device(name: str):
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name}: expected cpu, cuda or cuda:<index>") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {name}: expected cpu, cuda or cuda:<index>")
    return device


def load_arch(spec: str, batch: int, layers: int | None = None, vision_layers: int | None = None,
              dtype: str = "auto", device: str = "cpu"):
    """`arch:<name>` -> (model, inputs, vision tokens per sample, a description for JSON results):
    the published architecture with random weights and a batch of its benchmark-like prompts."""
    from . import archs

    name = spec[len(archs.PREFIX):]
    archs.spec(name)  # an unknown name fails here, before anything is built
    dev = resolve_device(device)
    model = archs.build(name, layers, vision_layers, dtype=resolve_dtype(dtype, device), device=dev)
    inputs, n_vision = archs.prompt(model, name, batch)
    return model, inputs, n_vision, archs.describe(model, name, n_vision)
