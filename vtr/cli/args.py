"""Argument types and accepted values shared by the `vtr` commands: every numeric and key=value
option is checked when the command line is parsed, so a bad value is one argparse line (exit 2)
before any model is loaded. Light imports only (`vtr --help` stays fast)."""
from __future__ import annotations

import argparse

from ..catalogue import NAMES
from ..paths import TESTBEDS

# The methods `vtr eval` offers (`--help`, `--list-methods`): the one list in `vtr.catalogue`, read
# without importing torch.
METHODS = NAMES


def benchmark_names() -> list[str]:
    """`--benchmark` values: the testbed's own splits and every real-benchmark reader."""
    from ..benchmarks import MODULES

    return ["testbed", *sorted(MODULES)]


MODEL_HELP = f"{', '.join(TESTBEDS)} (shipped testbeds) or a local HuggingFace checkpoint folder"


def positive_int(text: str) -> int:
    value = _cast(int, text, "an integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def nonnegative_int(text: str) -> int:
    value = _cast(int, text, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def fraction(text: str) -> float:
    """A rate or budget in (0, 1]."""
    value = _cast(float, text, "a number")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def nonnegative_float(text: str) -> float:
    value = _cast(float, text, "a number")
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def fractions(text: str) -> list[float]:
    """Comma-separated rates in (0, 1], e.g. 0.5,0.25."""
    return [fraction(part) for part in text.split(",")]


def positive_ints(text: str) -> list[int]:
    """Comma-separated positive integers, e.g. 16,128,512."""
    return [positive_int(part) for part in text.split(",")]


def key_value(text: str) -> tuple[str, int | float | str]:
    """KEY=VALUE, the value read as an int, a float or else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def _cast(cast, text: str, what: str):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
