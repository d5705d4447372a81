"""The tiny profile: written offline on first use, it names HuggingFace checkpoint folders and a
folder in each benchmark's official format, and the runners and splits of the book come from it."""
from __future__ import annotations

import pytest

from vtr.benchmarks import MODULES
from vtr.experiments import profiles, runners, tiny


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VTR_TINY_DIR", str(tmp_path_factory.mktemp("tiny")))
    mp.setenv("VTR_PROFILE", "tiny")
    mp.setenv("VTR_RESULTS", str(tmp_path_factory.mktemp("results")))
    yield profiles.current()
    mp.undo()


def test_the_profile_names_every_family_and_benchmark(tiny_profile):
    assert tiny_profile.name == "tiny"
    assert list(tiny_profile.models) == list(tiny.MODELS)
    assert set(tiny_profile.benchmarks) == set(MODULES)
    assert tiny_profile.missing() == [] and tiny_profile.overlaps() == []
    assert profiles.current().source == tiny_profile.source  # written once, then read


def test_splits_keep_search_questions_apart_from_reported_ones(tiny_profile):
    from vtr.experiments.sizes import size

    test, val, extra = (runners.split(role) for role in ("test", "val", "val-extra"))
    assert {s.family for s in test.samples} == set(MODULES)
    assert len(val) == size("val") and len(extra) == size("val_extra")
    ids = [{s.id for s in split.samples} for split in (test, val, extra)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    train = runners.train_questions(0)
    assert len(train) == size("router_questions") and not ({s.id for s in train.samples} & ids[0])


def test_every_model_runs_the_unpruned_and_a_pruned_evaluation(tiny_profile):
    from vtr.experiments import evaluations

    for model in runners.models():
        runner, test = runners.get("test", model)
        assert runner.name == model and runner.n_vision > 0
        full = evaluations.eval_method(runner, test, "full", None, experiment="tiny", progress=False,
                                       measure_speed=False)
        fastv = evaluations.eval_method(runner, test, "fastv", 0.25, experiment="tiny", progress=False,
                                        measure_speed=False)
        assert set(full["families"]) == set(MODULES) and full["keep_rate"] == 1.0
        assert fastv["keep_rate"] <= 0.25 + 1e-6 and fastv["flops_ratio"] < 1.0
