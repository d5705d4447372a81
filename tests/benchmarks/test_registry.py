"""The benchmark registry."""
import pytest

from vtr import benchmarks
from vtr.benchmarks import READERS, get_reader, get_scorer, gqa

NAMES = {"gqa", "pope", "mme", "textvqa", "scienceqa", "mmbench", "vqav2"}


def test_registry_lists_every_benchmark():
    # plus the scorer of a profile's joined benchmarks (`vtr.benchmarks.suite`)
    assert set(READERS) == NAMES == set(benchmarks.SCORERS) - {"suite"}
    assert get_reader("gqa") is gqa.read and get_scorer("gqa") is gqa.score


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown benchmark 'vizwiz'.*gqa.*vqav2"):
        get_reader("vizwiz")
