"""The runners and splits the book's experiments use, for the active profile (`profiles.current()`):
one runner per model and process (so its image-feature cache serves every experiment), splits cut to
the build's sizes and loaded once.

Roles of a split:
- "test": the reported questions. Testbed: its test split. Otherwise every benchmark of the
  profile, `size("test")` questions each, joined into one split (`vtr.benchmarks.suite`) whose
  families are the benchmarks.
- "val", "val-extra": the questions the searches and analyses decide on. Testbed: its val and
  val-extra splits. Otherwise the profile's search questions: a seeded slice of
  size("val") + size("val_extra"), cut in two.

DyVTE's router training questions come from `train_questions(seed)`: fresh questions from the
testbed's generator, or the profile's training questions.
"""
from __future__ import annotations

from pathlib import Path

from . import profiles
from .sizes import size

ROLES = ("test", "val", "val-extra")


def limits() -> dict:
    """Split sizes (`sizes.SIZES`): full runs use all of val, val-extra and test; smoke runs use slices."""
    return {"val": size("val"), "test": size("test"), "val-extra": size("val_extra")}


def models() -> list[str]:
    """The active profile's models, in its order (the first is the one single-model chapters use)."""
    return list(profiles.current().models)


_RUNNERS: dict = {}
_SPLITS: dict = {}


def runner(model: str):
    """The runner of `model` of the active profile (loaded once per process)."""
    prof = profiles.current()
    key = (prof.name, prof.source, model)
    if key not in _RUNNERS:
        from ..models import load

        if model not in prof.models:
            raise profiles.ProfileError(f"profile {prof.name} has no model {model!r}; it has "
                                        f"{', '.join(prof.models)}")
        if prof.is_testbed:
            _RUNNERS[key] = load(model)
        else:
            entry = prof.models[model]
            run = load(str(entry.path), dtype=entry.dtype, device=entry.device, benchmark="suite",
                       max_new_tokens=entry.max_new_tokens, batch_size=entry.batch_size)
            run.name = model  # results are named by the profile's model names
            _RUNNERS[key] = run
    return _RUNNERS[key]


def get(role: str, model: str | None = None):
    """(runner of `model`, the split of `role`) for the active profile (see the module docstring)."""
    model = model or models()[0]
    return runner(model), split(role)


def split(role: str):
    """The split of `role` (see the module docstring), loaded once per process and profile."""
    if role not in ROLES:
        raise ValueError(f"unknown split role {role!r}; expected one of {ROLES}")
    prof = profiles.current()
    key = (prof.name, prof.source, role, size("test"), size("val"), size("val_extra"))
    if key not in _SPLITS:
        _SPLITS[key] = _load(prof, role)
    return _SPLITS[key]


def _load(prof, role: str):
    from ..benchmarks import get_reader, suite

    if prof.is_testbed:
        from ..models import load_split

        return load_split("testbed", role, limits()[role])
    if role == "test":
        parts = {b: get_reader(b)(path, limit=size("test")) for b, path in prof.benchmarks.items()}
        return suite.join(parts, Path(f"{prof.name}-test"))
    q = prof.search
    n_val = size("val")
    whole = q.read(None if n_val is None or size("val_extra") is None else n_val + size("val_extra"))
    part = whole.samples[:n_val] if role == "val" else whole.samples[n_val:]
    from ..benchmarks.jsonl import Split

    cut = Split(whole.folder, part)
    cut.limit = len(part)
    return suite.join({q.benchmark: cut}, Path(f"{prof.name}-{role}"))


def train_questions(seed: int):
    """DyVTE's router training questions for router seed `seed`: on the testbed, questions from its
    training generator (seeds 100+: disjoint from val and test); otherwise the profile's training
    questions (the same for every router seed)."""
    from ..benchmarks import suite

    prof = profiles.current()
    if prof.is_testbed:
        from ..testbed.batches import heldout_split

        return heldout_split(size("router_questions"), seed=100 + seed)
    q = prof.train
    return suite.join({q.benchmark: q.read(size("router_questions"))}, Path(f"{prof.name}-train"))


def testbed(role: str, model: str = "testbed"):
    """The testbed form of `get`: (runner, split) of a shipped testbed."""
    return get(role, model)
