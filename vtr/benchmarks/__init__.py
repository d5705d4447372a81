"""Benchmarks: the common `Sample` / `Split` record (jsonl.py) and readers for the official formats
of the real benchmarks, each with its official metric.

Every benchmark module has `read(path, limit=None, ...) -> Split` (questions already in the prompt
form of LLaVA-1.5's evaluation, raw fields in `Sample.meta`) and `score(samples, predictions) -> dict`.
Nothing is downloaded: the official files must already be on disk.
"""
from __future__ import annotations

from typing import Callable

from ..errors import InputError
from . import gqa, mmbench, mme, pope, scienceqa, suite, textvqa, vqav2
from .jsonl import Sample, Split

MODULES = {m.NAME: m for m in (gqa, pope, mme, textvqa, scienceqa, mmbench, vqav2)}
READERS: dict[str, Callable[..., Split]] = {name: m.read for name, m in MODULES.items()}
SCORERS: dict[str, Callable[..., dict]] = {name: m.score for name, m in MODULES.items()}
# a profile's reported questions of several benchmarks in one split (`suite.join`), scored per benchmark
SCORERS[suite.NAME] = suite.score


def _lookup(table: dict, name: str):
    if name not in table:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def get_reader(name: str) -> Callable[..., Split]:
    """The `read` function of benchmark `name` (ValueError listing the known names otherwise)."""
    return _lookup(READERS, name)


def get_scorer(name: str) -> Callable[..., dict]:
    """The `score` function of benchmark `name` (ValueError listing the known names otherwise)."""
    return _lookup(SCORERS, name)


__all__ = ["READERS", "SCORERS", "MODULES", "get_reader", "get_scorer", "Sample", "Split"]
