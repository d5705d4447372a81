"""Measurements behind the later benchmarks' findings (`vtr.findings`): the statistics on synthetic
inputs whose answers are known, then smoke runs on the 8-layer testbed."""
from __future__ import annotations

import math

import numpy as np
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


# ---------------------------------------------------------------------------- attention statistics
def test_top_count_keeps_at_least_one_token():
    assert [F.top_count(144, 0.01), F.top_count(144, 0.10), F.top_count(10, 0.01), F.top_count(100, 0.1)] == \
        [1, 14, 1, 10]


def test_concentration_of_uniform_and_of_one_hot_attention():
    uniform = F.concentration(np.full(144, 0.5 / 144))
    assert uniform[0.01] == pytest.approx(1 / 144) and uniform[0.1] == pytest.approx(14 / 144)
    one = np.zeros(144)
    one[77] = 0.2
    assert F.concentration(one) == {0.01: pytest.approx(1.0), 0.1: pytest.approx(1.0)}
    two = np.zeros(144)
    two[[3, 9]] = [0.3, 0.1]
    assert F.concentration(two)[0.01] == pytest.approx(0.75)
    assert math.isnan(F.concentration(np.zeros(144))[0.1])


def test_vision_share_sums_the_vision_positions():
    attention = np.array([0.5, 0.1, 0.2, 0.05, 0.15])
    assert F.vision_share(attention, np.array([False, True, True, True, False])) == pytest.approx(0.35)


def test_a_sink_is_what_every_row_attends_to():
    valid = np.array([False, True, True, True, True, True, True])  # one left pad
    rows = np.array([4, 5, 6])
    a = np.array([[0, .50, .10, .30, .10, 0, 0],
                  [0, .40, .40, .05, .05, .10, 0],
                  [0, .45, .02, .40, .03, .05, .05]])
    s = F.sink_scores(a, rows, valid)
    assert s[1:4] == pytest.approx([0.40, 0.02, 0.05])
    assert np.isnan(s[0]) and np.isnan(s[4:]).all()  # padding, and positions not every row sees
    assert int(np.nanargmax(s)) == 1
    assert np.isnan(F.sink_scores(np.zeros((0, 7)), np.zeros(0, int), valid)).all()


def test_norm_ratios_are_relative_to_the_median_valid_norm():
    hidden = np.array([[100.0, 0], [3, 4], [0, 5], [0, 10], [6, 8]])
    r = F.norm_ratios(hidden, np.array([False, True, True, True, True]))
    assert np.isnan(r[0]) and r[1:] == pytest.approx([5 / 7.5, 5 / 7.5, 10 / 7.5, 10 / 7.5])


def test_the_profile_summary_averages_questions_per_layer():
    def row(layer, share, kind):
        sink = {"position": 0, "kind": kind, "vision_index": None, "min_attention": share / 10,
                "norm_ratio": 2 * share}
        return {"layer": layer, "vision_share": share, "n_vision": 144, "top_0.01": share, "top_0.1": 1.0,
                "sinks": [sink], "max_norm_ratio": 3.0}
    out = F.summarise_profile([row(0, 0.2, "first"), row(0, 0.4, "vision"), row(1, 0.6, "vision")])
    assert [r["layer"] for r in out] == [0, 1]
    assert out[0]["vision_share"] == pytest.approx(0.3) and out[0]["sink_attention"] == pytest.approx(0.03)
    assert out[0]["sink_kinds"] == {"first": 1, "vision": 1, "text": 0}
    assert out[0]["uniform_0.01"] == pytest.approx(1 / 144) and out[1]["questions"] == 1


# ---------------------------------------------------------------------------- on the testbed

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


def test_the_unpatched_model_answers_as_the_keep_all_hooks_do(smoke_testbed):
    runner, test = smoke_testbed
    out = F.batch_invariance(runner, test, None, (1, 8), patched=False)
    hooked = F.batch_invariance(runner, test, None, (1, 8))
    assert out["differing"] == {8: 0} and out["max_logit_diff"][8] < 1e-3
    assert abs(out["max_logit_diff"][8] - hooked["max_logit_diff"][8]) < 1e-3
    with pytest.raises(ValueError, match="unpatched"):
        F.batch_invariance(runner, test, _DropWhenBatched(), (1, 8), patched=False)


@pytest.mark.parametrize("name", ["fastv", "random"])
def test_a_method_answers_the_same_in_any_batch(smoke_testbed, name):
    from vtr.experiments.policies import policy_for

    runner, test = smoke_testbed
    # random consumes its seeded generator: each pass must start from a fresh copy
    out = F.batch_invariance(runner, test, policy_for(runner, test, name, 0.25), (1, 8))
    assert out["differing"] == {8: 0} and out["max_logit_diff"][8] < 1e-3


@pytest.mark.parametrize("policy", [None, "random", "batched"])
def test_answers_read_from_the_logits_pass_are_the_answering_passes(smoke_testbed, monkeypatch, policy):
    """The testbed answers by the argmax of its logits, so its answers come from the logits pass: the
    same result as running `predict` in a pass of its own (random: each pass with its own copy)."""
    from vtr.experiments.policies import policy_for

    runner, test = smoke_testbed
    chosen = {None: None, "random": lambda: policy_for(runner, test, "random", 0.25),
              "batched": _DropWhenBatched}[policy]
    one = F.batch_invariance(runner, test, chosen and chosen(), (1, 8, 16))
    predicted = []

    def predict(inputs):  # an answering pass of its own: the argmax word of its own forward
        predicted.append(1)
        return [runner.tok.vocab[i] for i in runner.logits(inputs).argmax(-1).tolist()]
    monkeypatch.setattr(runner, "answers_from_logits", lambda logits: None)
    monkeypatch.setattr(runner, "predict", predict)
    two = F.batch_invariance(runner, test, chosen and chosen(), (1, 8, 16))
    assert predicted and one == two


def test_a_batch_dependent_policy_is_reported(smoke_testbed):
    runner, test = smoke_testbed
    out = F.batch_invariance(runner, test, _DropWhenBatched(), (1, 8, 16))
    assert out["differing"][8] > 0 and out["differing"][16] > 0
    assert out["max_logit_diff"][8] > 1e-2 and len(out["differing_ids"][8]) == out["differing"][8]


def test_the_attention_profile_of_the_testbed(smoke_testbed):
    from vtr.analysis import layer_scores

    runner, test = smoke_testbed
    four = test.subset(4)
    prof = F.attention_profile(runner, four, batch_size=4)
    layers = runner.model.config.get_text_config().num_hidden_layers
    assert [r["layer"] for r in prof["layers"]] == list(range(layers))
    assert len(prof["samples"]) == 4 * layers
    # the vision share is the sum of the per-token scores the analyses rank by
    scores = layer_scores(runner, four, progress=False)  # (questions, layers, N)
    got = np.array([[r["vision_share"] for r in prof["samples"] if r["layer"] == layer]
                    for layer in range(layers)])
    assert got.T == pytest.approx(scores.sum(-1), abs=1e-4)
    for r in prof["layers"]:
        assert 0 <= r["vision_share"] <= 1
        assert r["uniform_0.01"] - 1e-6 <= r["top_0.01"] <= r["top_0.1"] <= 1 + 1e-6
        assert sum(r["sink_kinds"].values()) == 4 and r["max_norm_ratio"] >= 1
    for s in prof["samples"]:
        assert len(s["sinks"]) == 3
        assert all(k["kind"] in ("first", "vision") for k in s["sinks"])  # the context before the question
        assert all(0 <= k["min_attention"] <= 1 for k in s["sinks"])
        mins = [k["min_attention"] for k in s["sinks"]]
        assert mins == sorted(mins, reverse=True)
