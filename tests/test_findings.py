"""Measurements behind the later benchmarks' findings (`vtr.findings`): the statistics on synthetic
inputs whose answers are known, then smoke runs on the 8-layer testbed."""
from __future__ import annotations

import pytest

from vtr import findings as F
from vtr.engine import Policy
from vtr.evaluation.loop import cost
from vtr.flops import DecoderShape
from vtr.plan import Plan


# ---------------------------------------------------------------------------- equivalent tokens
@pytest.mark.parametrize("plan", [Plan.full(8, 144), Plan.drop_at(8, 144, 2, 36), Plan.drop_at(16, 144, 3, 0),
                                  Plan((144, 100, 72, 72, 30, 30, 10, 0), 144), Plan((36,) * 8, 144)])
def test_equivalent_tokens_are_the_mean_keep_count(plan):
    assert F.equivalent_tokens(plan) == pytest.approx(plan.mean_keep_rate * plan.n_vision)


def test_equivalent_tokens_weight_each_token_by_the_layers_it_passes_through():
    # FastV-like: 144 tokens through layers 0-1, 36 of them through all 8
    assert F.equivalent_tokens(Plan.drop_at(8, 144, 2, 36)) == pytest.approx((2 * 144 + 6 * 36) / 8)
    assert F.equivalent_tokens([144, 144, 0, 0]) == pytest.approx(72.0)


def test_tokens_cut_before_layer_0_count_at_every_layer():
    assert F.equivalent_tokens(Plan((36,) * 8, 144)) == pytest.approx(36.0)  # an encoder plan
    assert F.equivalent_tokens(Plan((144,) * 8, 144, encoder_keep=36)) == 36.0
    assert F.equivalent_tokens(Plan((144, 144, 20, 20), 144, encoder_keep=72)) == pytest.approx(46.0)


def test_equivalent_tokens_of_a_record_are_its_keep_rate_times_the_vision_tokens():
    shape = DecoderShape(hidden=64, intermediate=128, n_layers=4)
    recs = [{"vision": [144, 144, 36, 36], "tokens": [154, 154, 46, 46], "tokens_full": [154] * 4},
            {"vision": [144, 72, 72, 0], "tokens": [160, 88, 88, 16], "tokens_full": [160] * 4}]
    summary = cost(recs, shape, 144)
    per_question = [r["vision"] for r in recs]
    assert F.equivalent_tokens(summary) == pytest.approx(summary["keep_rate"] * 144)
    assert F.equivalent_tokens(per_question) == pytest.approx(summary["mean_tokens"])
    assert F.equivalent_tokens(per_question) == pytest.approx((360 + 288) / 8)


def test_equivalent_tokens_refuse_counts_without_layers():
    with pytest.raises(ValueError, match="per-layer counts"):
        F.equivalent_tokens([])


# ---------------------------------------------------------------------------- on the testbed
@pytest.fixture(scope="module")
def smoke_testbed(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VTR_SMOKE", "1")
    mp.setenv("VTR_PROFILE", "testbed")
    mp.setenv("VTR_RESULTS", str(tmp_path_factory.mktemp("results")))
    from vtr.experiments import runners

    runner, test = runners.get("test", "testbed")
    yield runner, test.subset(16)
    mp.undo()


class _DropWhenBatched(Policy):
    """Planted batch dependence: every vision token leaves before layer 1 when the batch holds more
    than one question."""

    def keep_before(self, layer, view):
        if layer == 1 and view.hidden.shape[0] > 1:
            return ~view.vision
        return None


def test_the_unpruned_model_answers_the_same_in_any_batch(smoke_testbed):
    runner, test = smoke_testbed
    out = F.batch_invariance(runner, test, None, (1, 8))
    assert out["n"] == 16 and out["differing"] == {8: 0} and out["max_logit_diff"][8] < 1e-3


@pytest.mark.parametrize("name", ["fastv", "random"])
def test_a_method_answers_the_same_in_any_batch(smoke_testbed, name):
    from vtr.experiments.policies import policy_for

    runner, test = smoke_testbed
    # random consumes its seeded generator: each pass must start from a fresh copy
    out = F.batch_invariance(runner, test, policy_for(runner, test, name, 0.25), (1, 8))
    assert out["differing"] == {8: 0} and out["max_logit_diff"][8] < 1e-3


def test_a_batch_dependent_policy_is_reported(smoke_testbed):
    runner, test = smoke_testbed
    out = F.batch_invariance(runner, test, _DropWhenBatched(), (1, 8, 16))
    assert out["differing"][8] > 0 and out["differing"][16] > 0
    assert out["max_logit_diff"][8] > 1e-2 and len(out["differing_ids"][8]) == out["differing"][8]
