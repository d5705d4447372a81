"""Checks shared by the benchmark readers' tests. The fixture files they read are written by
`vtr.benchmarks.fixtures` (the tiny profile writes its benchmark folders with it too)."""
from __future__ import annotations

import contextlib

import pytest
from PIL import Image

from vtr.benchmarks.fixtures import SIZE


def close_to(im: Image.Image, color, tol: int = 8) -> bool:
    """The image is the solid square of `color` (JPEG may shift a channel by a few levels)."""
    return im.mode == "RGB" and im.size == SIZE and all(
        abs(a - b) <= tol for a, b in zip(im.getpixel((4, 4)), color))


@contextlib.contextmanager
def missing(path):
    """Expect a FileNotFoundError whose filename is exactly `path`."""
    with pytest.raises(FileNotFoundError) as err:
        yield
    assert err.value.filename == str(path), err.value
