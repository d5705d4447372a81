"""Fingerprints of what produced a resumable artefact, and the one rule for resuming with one.

A search trace, an evaluation run file and a router training each record a flat dict of the inputs
that change their results: the model and a digest of its weights, the split, its limit and a
digest of its samples, the method, its hyper-parameters, budget and kind, the query, the seed, and
the version of the code that computes results (`code_version`). Resuming compares the saved dict
with the current one and refuses any difference, naming the fields (`check`): a resumed run never
mixes another configuration's finished work into its own.

Which files change results is one list, `fingerprint.txt` beside this module (`read_list`): the code
version, the results folder's fingerprint (`vtr.paths.inputs_fingerprint`) and the book's execution
cache (`.ci/cache_fingerprint.py`, standard library only, reads the same file) all follow it.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .errors import InputError

ROOT = Path(__file__).resolve().parent.parent  # the repository (site-packages when installed)
LIST = Path(__file__).with_name("fingerprint.txt")
KINDS = ("results", "pages", "none")


class FingerprintError(InputError):
    """A resumable artefact was made by another configuration."""


def _digest(h: "hashlib._Hash") -> str:
    return h.hexdigest()[:16]


def read_list(path: Path | None = None) -> list[tuple[str, str]]:
    """The (path, kind) entries of the list of what changes results (default `LIST`)."""
    path = LIST if path is None else path
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) < 2 or words[1] not in KINDS:
            raise ValueError(f"{path}:{n}: expected a path and one of {', '.join(KINDS)}, "
                             f"got {line.strip()!r}")
        entries.append((words[0], words[1]))
    return entries


def kind_of(name: str, entries: list[tuple[str, str]]) -> str | None:
    """What a change to the file `name` (relative to the repository) changes: the kind of the longest
    entry covering it (a folder entry covers every file under it); None when no entry does."""
    best = max((e for e in entries if name == e[0] or (e[0].endswith("/") and name.startswith(e[0]))),
               key=lambda e: len(e[0]), default=None)
    return best and best[1]


def listed_files(kinds: tuple[str, ...] = ("results",), root: Path | None = None, data: Path | None = None,
                 entries: list[tuple[str, str]] | None = None) -> list[tuple[str, Path]]:
    """(name, path) of every existing file the list marks as one of `kinds`, sorted by name: names
    relative to the repository, files under `root` (default `ROOT`), entries under data/ looked up
    in `data` (default root/data)."""
    entries = read_list() if entries is None else entries
    root = ROOT if root is None else root
    data = root / "data" if data is None else data
    found = {}
    for entry, _ in entries:
        base = data / entry[len("data/"):] if entry.startswith("data/") else root / entry
        paths = sorted(base.rglob("*")) if entry.endswith("/") else [base]
        for path in paths:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            name = entry + path.relative_to(base).as_posix() if entry.endswith("/") else entry
            if kind_of(name, entries) in kinds:
                found[name] = path
    return sorted(found.items())


def files_digest(files: list[tuple[str, Path]]) -> "hashlib._Hash":
    """sha256 over each file's name and bytes, in the order given."""
    h = hashlib.sha256()
    for name, path in files:
        h.update(name.encode())
        h.update(path.read_bytes())
    return h


@lru_cache(maxsize=1)
def code_version() -> str:
    """Digest of the files under vtr/ that the list marks as changing results."""
    files = [(name[len("vtr/"):], path) for name, path in listed_files(("results",))
             if name.startswith("vtr/")]
    return _digest(files_digest(files))


def weights_digest(model) -> str:
    """Digest of a model's parameters: every tensor's name, dtype and shape and its first and last
    256 values. Cheap on a multi-GB checkpoint (no full pass over the weights), and two checkpoints
    that differ anywhere a training step touches (every tensor) get different digests."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        for piece in (flat[:256], flat[-256:]):
            h.update(piece.float().cpu().numpy().tobytes())
    return _digest(h)


def split_fingerprint(split) -> dict:
    """{"split", "limit", "samples"}: the split's folder name, the limit it was cut to (None: whole)
    and a digest of its samples' ids, questions and answers."""
    h = hashlib.sha256()
    for s in split.samples:
        h.update(json.dumps([s.id, s.question, s.answer]).encode())
    return {"split": split.folder.name, "limit": getattr(split, "limit", None), "samples": _digest(h)}


def model_fingerprint(runner) -> dict:
    """{"model", "weights"}: the runner's name and its weights' digest (computed once per runner)."""
    if getattr(runner, "_weights_digest", None) is None:
        runner._weights_digest = weights_digest(runner.model)
    return {"model": runner.name, "weights": runner._weights_digest}


def canonical(obj):
    """JSON round trip (tuples -> lists), so fingerprints compare as they are stored."""
    return json.loads(json.dumps(obj))


def check(saved: dict, now: dict, where: str, fresh: str = "delete it or write to another file") -> None:
    """Raise `FingerprintError` naming every field where `saved` and `now` differ."""
    saved, now = canonical(saved), canonical(now)
    diffs = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if diffs:
        detail = "; ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in diffs)
        raise FingerprintError(f"{where} was made with other {', '.join(diffs)} ({detail}); "
                               f"rerun with the same settings to resume, or {fresh} to start afresh")
