"""Fixture files for the benchmark readers' tests: the writers live in `vtr.benchmarks.fixtures`
(the tiny profile writes its benchmark folders with them); the checks below are the tests' own."""
from __future__ import annotations

import contextlib

import pytest
from PIL import Image

from vtr.benchmarks.fixtures import (  # noqa: F401  (re-exported for the tests)
    BLUE, GREEN, GREY, MMBENCH_COLUMNS, POPE_ROWS, RED, SIZE, b64_image, save_image, write_gqa, write_json,
    write_mmbench, write_mme, write_pope, write_scienceqa, write_textvqa, write_vqav2,
)


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
