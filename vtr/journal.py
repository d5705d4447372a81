"""Append-only JSONL files that a killed process cannot corrupt.

Every append writes whole lines, then flushes and fsyncs, so a record is either on disk or not.
A process killed mid-write leaves at most one torn last line; `read` drops it with a warning and
cuts it from the file, so the next append starts on a clean line and the torn record is never
trusted. A last line that is a complete JSON object but lacks its newline is kept (no proper
prefix of a JSON object is itself one, so it is whole) and the newline is added. A bad line
anywhere else is an error: the file was edited or is not a journal.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .errors import InputError


class JournalError(InputError):
    """A journal with an unreadable line before its last one."""


def read(path: Path) -> list[dict]:
    """The complete records of `path` ([] if it does not exist); a torn last line is cut off."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    body, sep, tail = data.rpartition(b"\n")
    lines = body.split(b"\n") if sep else []
    out = []
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise JournalError(f"{path}: line {i} is not valid JSON; the file is corrupt, not just "
                                   f"cut short (delete it to start afresh)") from None
    if tail.strip():  # no final newline
        try:
            last = json.loads(tail)
        except ValueError:
            last = None
        if isinstance(last, dict):
            out.append(last)
            with open(path, "ab") as f:
                f.write(b"\n")
        else:
            warnings.warn(f"{path}: ignoring a torn last line (a run was killed while writing it): "
                          f"{tail[:80]!r}", RuntimeWarning, stacklevel=2)
            with open(path, "r+b") as f:
                f.truncate(len(body) + len(sep))
    return out


def append(path: Path, records: list[dict]) -> None:
    """Append whole lines, flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` via a temporary file and a rename: old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
