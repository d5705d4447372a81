"""Fixtures shared by test folders (helpers shared within one folder live in its helpers.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def smoke_testbed(tmp_path_factory):
    """The 8-layer testbed's runner and 16 of its smoke test questions, results in a fresh folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VTR_SMOKE", "1")
    mp.setenv("VTR_PROFILE", "testbed")
    mp.setenv("VTR_RESULTS", str(tmp_path_factory.mktemp("results")))
    from vtr.experiments import runners

    runner, test = runners.get("test", "testbed")
    yield runner, test.subset(16)
    mp.undo()
