"""Run profiles: which models and benchmarks the experiments use.

The default profile is the shipped testbed (nothing to configure). `VTR_PROFILE=paper` selects the
real checkpoints and benchmarks listed in the YAML file `VTR_PROFILE_FILE`::

    models:                      # name: checkpoint folder, or {path, dtype, device}
      llava-1.5-7b:
        path: /data/hf/llava-1.5-7b-hf
        dtype: bfloat16          # auto | float32 | bfloat16 | float16   (default auto)
        device: cuda             # cpu | cuda | cuda:N                    (default: cuda if available)
    benchmarks:                  # name (vtr.benchmarks): folder of the official files
      pope: /data/bench/pope
      gqa: /data/bench/gqa

Relative paths are resolved against the YAML file's folder; `~` and `$VARS` are expanded. Every
path must exist (`load` raises one FileNotFoundError listing all missing ones, naming the entry
and the file) unless `check=False`. `book/paper_profile.example.yaml` is a template.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

PROFILES = ("testbed", "paper")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ProfileError(InputError):
    """The profile file is malformed (unknown keys, names, dtypes)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    dtype: str = "auto"
    device: str | None = None

    def cli_args(self) -> list[str]:
        args = ["--model", str(self.path), "--dtype", self.dtype]
        return args + (["--device", self.device] if self.device else [])


@dataclass(frozen=True)
class Profile:
    name: str
    models: dict[str, ModelEntry] = field(default_factory=dict)
    benchmarks: dict[str, Path] = field(default_factory=dict)
    source: Path | None = None

    def missing(self) -> list[str]:
        """'kind name: path' of every model folder / benchmark folder that does not exist."""
        out = [f"model {m.name}: {m.path}" for m in self.models.values() if not m.path.is_dir()]
        out += [f"benchmark {b}: {p}" for b, p in self.benchmarks.items() if not p.exists()]
        return out

    def check(self) -> "Profile":
        missing = self.missing()
        if missing:
            raise FileNotFoundError(f"profile {self.source or self.name}: missing paths:\n  " + "\n  ".join(missing))
        return self

    def command(self, model: str, benchmark: str, method: str, budget: float | None = None, nproc: int = 1,
                extra: tuple[str, ...] = ()) -> str:
        """The shell command evaluating `method` of `model` on `benchmark` (torchrun when nproc > 1)."""
        m = self.models[model]
        args = ["eval", *m.cli_args(), "--benchmark", benchmark, "--data", str(self.benchmarks[benchmark]), "--method", method]
        args += ["--budget", str(budget)] if budget is not None else []
        head = ["vtr"] if nproc <= 1 else ["torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m", "vtr.cli"]
        return " ".join(head + args + list(extra))


def name() -> str:
    """The active profile: $VTR_PROFILE, default "testbed"."""
    value = os.environ.get("VTR_PROFILE", "testbed") or "testbed"
    if value not in PROFILES:
        raise ProfileError(f"VTR_PROFILE={value!r}: expected one of {', '.join(PROFILES)}")
    return value


def _path(value, base: Path) -> Path:
    p = Path(os.path.expandvars(os.path.expanduser(str(value))))
    return p if p.is_absolute() else base / p


def parse(data: dict, base: Path = Path("."), source: Path | None = None, profile: str = "paper") -> Profile:
    """A Profile from the YAML mapping (see the module docstring); paths are not checked here."""
    from ..benchmarks import MODULES

    if not isinstance(data, dict):
        raise ProfileError(f"profile {source}: expected a mapping with 'models' and 'benchmarks'")
    unknown = set(data) - {"models", "benchmarks"}
    if unknown:
        raise ProfileError(f"profile {source}: unknown keys {sorted(unknown)}; expected 'models', 'benchmarks'")
    models = {}
    for key, entry in (data.get("models") or {}).items():
        entry = {"path": entry} if isinstance(entry, (str, Path)) else dict(entry or {})
        bad = set(entry) - {"path", "dtype", "device"}
        if bad or "path" not in entry:
            raise ProfileError(f"profile {source}: model {key!r} needs 'path' (and optional dtype, device); "
                               f"got keys {sorted(entry)}")
        dtype = str(entry.get("dtype", "auto"))
        if dtype not in DTYPES:
            raise ProfileError(f"profile {source}: model {key!r} dtype {dtype!r}; expected one of {DTYPES}")
        models[str(key)] = ModelEntry(str(key), _path(entry["path"], base), dtype, entry.get("device"))
    benchmarks = {}
    for key, folder in (data.get("benchmarks") or {}).items():
        if key not in MODULES:
            raise ProfileError(f"profile {source}: unknown benchmark {key!r}; known: {', '.join(sorted(MODULES))}")
        if isinstance(folder, dict):
            folder = folder.get("path")
        if not folder:
            raise ProfileError(f"profile {source}: benchmark {key!r} needs a folder")
        benchmarks[str(key)] = _path(folder, base)
    return Profile(profile, models, benchmarks, source)


def load(path: Path | str | None = None, check: bool = True) -> Profile:
    """Read the profile file (`path`, default $VTR_PROFILE_FILE); with `check`, every path must exist."""
    import yaml

    if path is None:
        path = os.environ.get("VTR_PROFILE_FILE")
        if not path:
            raise ProfileError("VTR_PROFILE=paper needs VTR_PROFILE_FILE=<profile.yaml> (models and benchmark "
                               "folders; template: book/paper_profile.example.yaml)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"profile file {path} does not exist (VTR_PROFILE_FILE)")
    prof = parse(yaml.safe_load(path.read_text()) or {}, path.resolve().parent, path)
    return prof.check() if check else prof


def current(check: bool = True) -> Profile:
    """The active profile: the testbed (no paths), or the paper profile read from $VTR_PROFILE_FILE."""
    if name() == "testbed":
        return Profile("testbed")
    return load(check=check)
