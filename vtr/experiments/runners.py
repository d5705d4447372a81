"""The runners and splits the book's experiments use: one runner per model and process (so its
image-feature cache serves every experiment), splits cut to the build's sizes."""
from __future__ import annotations

from .sizes import size


def limits() -> dict:
    """Split sizes (`sizes.SIZES`): full runs use all of val, val-extra and test; smoke runs use slices."""
    return {"val": size("val"), "test": size("test"), "val-extra": size("val_extra")}


_RUNNERS: dict = {}


def testbed(split: str, model: str = "testbed"):
    """The runner of a shipped testbed (`vtr.paths.TESTBEDS`) and its split at the book's size."""
    from ..models import load, load_split

    if model not in _RUNNERS:
        _RUNNERS[model] = load(model)
    return _RUNNERS[model], load_split(model, split, limits()[split])
