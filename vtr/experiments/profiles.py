"""Profiles: which models, benchmarks and questions the book's experiments run on.

One notion, chosen by `VTR_PROFILE` (default `testbed`):

- `testbed`: the two shipped testbeds (8 and 16 decoder layers) on the procedural benchmark; its
  task families stand in for the benchmarks' columns. Nothing to configure.
- `paper`: the YAML file `VTR_PROFILE_FILE` names real checkpoints and the official benchmark files.
- `tiny`: tiny random-init checkpoints of the supported families and small benchmark folders in each
  official format, written offline on first use (`vtr.experiments.tiny`). Its numbers mean nothing
  (random weights); it exists so the paper path runs end to end on every test run.

A profile file (template: `book/paper_profile.example.yaml`)::

    models:                      # name: checkpoint folder, or
                                 #   {path, dtype, device, max_new_tokens, batch_size}
      llava-1.5-7b: {path: /data/hf/llava-1.5-7b-hf, dtype: bfloat16, device: cuda}
    benchmarks:                  # name (vtr.benchmarks): the official files of the reported questions
      pope: /data/bench/pope
      gqa: /data/bench/gqa
    search:                      # the questions G-Search and P-Sigmoid decide on (never reported)
      benchmark: gqa             #   read with this benchmark's reader
      path: /data/bench/gqa-val  #   from these official files (another split than the reported one)
      seed: 0                    #   a seeded slice of sizes val + val_extra questions
    train:                       # the questions DyVTE's routers train on (same keys)
      benchmark: gqa
      path: /data/bench/gqa-train
      seed: 1
    sizes:                       # overrides of vtr.experiments.sizes.SIZES for this profile
      test: 1000

Relative paths are resolved against the YAML file's folder; `~` and `$VARS` are expanded. `check()`
refuses, in one line naming the entry, a missing folder and search or training questions that share
an id with the reported questions of the same benchmark (checked before any work).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

PROFILES = ("testbed", "paper", "tiny")
DTYPES = ("auto", "float32", "bfloat16", "float16")
KEYS = ("models", "benchmarks", "search", "train", "sizes")


class ProfileError(InputError):
    """The profile is malformed, names a missing path, or lets its searches see its test questions."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    dtype: str = "auto"
    device: str | None = None
    max_new_tokens: int = 16   # greedy answer length cap (the benchmarks ask for a word or a phrase)
    batch_size: int = 16       # questions per generate() call

    def cli_args(self) -> list[str]:
        args = ["--model", str(self.path), "--dtype", self.dtype]
        return args + (["--device", self.device] if self.device else [])


@dataclass(frozen=True)
class Questions:
    """Questions that are not reported: a benchmark reader over official files, sliced with a seed."""
    benchmark: str
    path: Path
    seed: int = 0

    def read(self, n: int | None):
        """The first `n` questions of a seeded shuffle of the whole file (all of them when None)."""
        import random

        from ..benchmarks import get_reader

        split = get_reader(self.benchmark)(self.path)
        order = list(range(len(split.samples)))
        random.Random(self.seed).shuffle(order)
        split.samples = [split.samples[i] for i in order[:n]]
        split.limit = n
        return split


@dataclass(frozen=True)
class Profile:
    name: str
    models: dict[str, ModelEntry] = field(default_factory=dict)
    benchmarks: dict[str, Path] = field(default_factory=dict)
    search: Questions | None = None
    train: Questions | None = None
    sizes: dict = field(default_factory=dict)
    source: Path | None = None

    @property
    def is_testbed(self) -> bool:
        return self.name == "testbed"

    def missing(self) -> list[str]:
        """'kind name: path' of every model folder / benchmark file that does not exist."""
        out = [f"model {m.name}: {m.path}" for m in self.models.values() if not m.path.is_dir()]
        out += [f"benchmark {b}: {p}" for b, p in self.benchmarks.items() if not p.exists()]
        out += [f"{role} {q.benchmark}: {q.path}" for role, q in (("search", self.search),
                                                                  ("train", self.train))
                if q is not None and not q.path.exists()]
        return out

    def overlaps(self, test_limit: int | None = None) -> list[str]:
        """'role benchmark: n shared ids' for search / training questions that are also reported."""
        from ..benchmarks import get_reader

        out = []
        for role, q in (("search", self.search), ("train", self.train)):
            if q is None or q.benchmark not in self.benchmarks:
                continue
            reported = {s.id for s in get_reader(q.benchmark)(self.benchmarks[q.benchmark],
                                                              limit=test_limit).samples}
            shared = reported & {s.id for s in q.read(None).samples}
            if shared:
                out.append(f"{role} questions of {q.benchmark} ({q.path}) share {len(shared)} ids with its "
                           f"test questions ({self.benchmarks[q.benchmark]}), e.g. {sorted(shared)[0]!r}")
        return out

    def check(self) -> "Profile":
        """Refuse missing paths and search / training questions among the reported ones (one line)."""
        where = f"profile {self.source or self.name}"
        missing = self.missing()
        if missing:
            raise ProfileError(f"{where}: missing paths: {'; '.join(missing)}")
        if not self.is_testbed:
            for role in ("search", "train"):
                if getattr(self, role) is None:
                    purpose = "the searches decide on" if role == "search" else "DyVTE trains on"
                    raise ProfileError(f"{where}: needs a '{role}' entry (benchmark, path, seed): the "
                                       f"questions {purpose}")
            bad = self.overlaps()
            if bad:
                raise ProfileError(f"{where}: {'; '.join(bad)}")
        return self

    def command(self, model: str, benchmark: str, method: str, budget: float | None = None, nproc: int = 1,
                extra: tuple[str, ...] = ()) -> str:
        """The shell command evaluating `method` of `model` on `benchmark` (torchrun when nproc > 1)."""
        m = self.models[model]
        args = ["eval", *m.cli_args(), "--benchmark", benchmark, "--data", str(self.benchmarks[benchmark]),
                "--method", method]
        args += ["--budget", str(budget)] if budget is not None else []
        head = ["vtr"] if nproc <= 1 else ["torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m",
                                           "vtr.cli"]
        return " ".join(head + args + list(extra))


def name() -> str:
    """The active profile's name: $VTR_PROFILE, default "testbed"."""
    value = os.environ.get("VTR_PROFILE", "testbed") or "testbed"
    if value not in PROFILES:
        raise ProfileError(f"VTR_PROFILE={value!r}: expected one of {', '.join(PROFILES)}")
    return value


def _path(value, base: Path) -> Path:
    p = Path(os.path.expandvars(os.path.expanduser(str(value))))
    return p if p.is_absolute() else base / p


def _questions(role: str, entry, base: Path, where: str) -> Questions | None:
    from ..benchmarks import MODULES

    if entry is None:
        return None
    if (not isinstance(entry, dict) or set(entry) - {"benchmark", "path", "seed"}
            or not {"benchmark", "path"} <= set(entry)):
        raise ProfileError(f"{where}: '{role}' needs benchmark, path (and optional seed); got {entry!r}")
    if entry["benchmark"] not in MODULES:
        raise ProfileError(f"{where}: {role} benchmark {entry['benchmark']!r}; known: "
                           f"{', '.join(sorted(MODULES))}")
    seed = entry.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ProfileError(f"{where}: {role} seed {seed!r} must be an integer")
    return Questions(str(entry["benchmark"]), _path(entry["path"], base), seed)


def _sizes(entry, where: str) -> dict:
    from .sizes import SIZES

    entry = dict(entry or {})
    unknown = sorted(set(entry) - set(SIZES))
    if unknown:
        raise ProfileError(f"{where}: unknown sizes {unknown}; known: {', '.join(SIZES)}")
    return entry


def parse(data: dict, base: Path = Path("."), source: Path | None = None, profile: str = "paper") -> Profile:
    """A Profile from the YAML mapping (see the module docstring); paths are not checked here."""
    from ..benchmarks import MODULES

    where = f"profile {source or profile}"
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping with {', '.join(KEYS)}")
    unknown = set(data) - set(KEYS)
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}; expected {', '.join(KEYS)}")
    models = {}
    for key, entry in (data.get("models") or {}).items():
        entry = {"path": entry} if isinstance(entry, (str, Path)) else dict(entry or {})
        bad = set(entry) - {"path", "dtype", "device", "max_new_tokens", "batch_size"}
        if bad or "path" not in entry:
            raise ProfileError(f"{where}: model {key!r} needs 'path' (and optional dtype, device, "
                               f"max_new_tokens, batch_size); got keys {sorted(entry)}")
        for count in ("max_new_tokens", "batch_size"):
            value = entry.get(count, 16)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ProfileError(f"{where}: model {key!r} {count} {value!r} must be a positive integer")
        dtype = str(entry.get("dtype", "auto"))
        if dtype not in DTYPES:
            raise ProfileError(f"{where}: model {key!r} dtype {dtype!r}; expected one of {DTYPES}")
        models[str(key)] = ModelEntry(str(key), _path(entry["path"], base), dtype, entry.get("device"),
                                      entry.get("max_new_tokens", 16), entry.get("batch_size", 16))
    benchmarks = {}
    for key, folder in (data.get("benchmarks") or {}).items():
        if key not in MODULES:
            raise ProfileError(f"{where}: unknown benchmark {key!r}; known: {', '.join(sorted(MODULES))}")
        if isinstance(folder, dict):
            folder = folder.get("path")
        if not folder:
            raise ProfileError(f"{where}: benchmark {key!r} needs a folder")
        benchmarks[str(key)] = _path(folder, base)
    # the papers' column order, whatever order the file lists them in
    benchmarks = {b: benchmarks[b] for b in BENCHMARK_ORDER if b in benchmarks}
    return Profile(profile, models, benchmarks, _questions("search", data.get("search"), base, where),
                   _questions("train", data.get("train"), base, where), _sizes(data.get("sizes"), where),
                   source)


# The benchmarks' order and names in the papers' tables (GQA, MMBench, MME, POPE, SQA, VQAv2, TextVQA).
BENCHMARK_ORDER = ("gqa", "mmbench", "mme", "pope", "scienceqa", "vqav2", "textvqa")
BENCHMARK_NAMES = {"gqa": "GQA", "mmbench": "MMBench", "mme": "MME", "pope": "POPE", "scienceqa": "ScienceQA",
                   "vqav2": "VQAv2", "textvqa": "TextVQA"}


def load(path: Path | str | None = None, check: bool = True, profile: str = "paper") -> Profile:
    """Read the profile file (`path`, default $VTR_PROFILE_FILE); with `check`, refuse missing paths
    and search / training questions among the reported ones."""
    import yaml

    if path is None:
        path = os.environ.get("VTR_PROFILE_FILE")
        if not path:
            raise ProfileError("VTR_PROFILE=paper needs VTR_PROFILE_FILE=<profile.yaml> (models and "
                               "benchmark folders; template: book/paper_profile.example.yaml)")
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"profile file {path} does not exist (VTR_PROFILE_FILE)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ProfileError(f"profile file {path}: not valid YAML ({' '.join(str(err).split())})") from None
    prof = parse(data, path.resolve().parent, path, profile)
    return prof.check() if check else prof


def current(check: bool = True) -> Profile:
    """The active profile: the testbed, the paper profile read from $VTR_PROFILE_FILE, or the tiny one
    (written on first use). Read and checked once per process and profile file version."""
    which = name()
    if which == "testbed":
        from ..paths import TESTBEDS, benchmark_dir, testbed_model_dir

        return Profile("testbed", {m: ModelEntry(m, testbed_model_dir(m)) for m in TESTBEDS},
                       {"testbed": benchmark_dir("testbed")})
    if which == "tiny":
        from .tiny import profile_file

        path = profile_file()
    else:
        path = os.environ.get("VTR_PROFILE_FILE")
        if not path:
            raise ProfileError("VTR_PROFILE=paper needs VTR_PROFILE_FILE=<profile.yaml> (models and "
                               "benchmark folders; template: book/paper_profile.example.yaml)")
    path = Path(path)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _read(str(path), stamp, check, which)


@lru_cache(maxsize=8)
def _read(path: str, stamp, check: bool, which: str) -> Profile:
    return load(path, check, profile=which)
