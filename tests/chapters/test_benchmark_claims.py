"""The later benchmarks' verdict rules (`vtr.chapters.benchmark_claims`), on synthetic measurements:
each rule gives the verdict its docstring states, whatever the testbed measured."""
import numpy as np
import pytest

from vtr.catalogue import BY_NAME
from vtr.chapters import benchmark_claims as B

N = 400
BASE = np.tile([1.0, 0.0], N // 2)  # half right


def shifted(points: float) -> np.ndarray:
    """BASE with `points` (a share of N) of its wrong answers made right (or right ones wrong)."""
    out, k = BASE.copy(), int(round(abs(points) * N))
    out[np.flatnonzero(BASE == (0.0 if points > 0 else 1.0))[:k]] = 1.0 if points > 0 else 0.0
    return out


def test_the_method_lists_name_catalogue_methods():
    assert all("attention" in BY_NAME[m].scored_from for m in B.ATTENTION_METHODS)
    assert set(B.ATTENTION_METHODS) < set(B.ADVANCED_METHODS) <= set(BY_NAME)


def test_shifted_moves_accuracy_by_the_points_asked():
    assert shifted(0.15).mean() - BASE.mean() == pytest.approx(0.15)
    assert shifted(-0.1).mean() - BASE.mean() == pytest.approx(-0.1)


def _random_correct(shifts: dict) -> dict:
    """{(method, budget): correctness}: random at BASE, each method shifted by shifts[budget][i]."""
    out = {}
    for b, deltas in shifts.items():
        out[("random", b)] = BASE
        for m, d in zip(B.ATTENTION_METHODS, deltas):
            out[(m, b)] = shifted(d)
    return out


@pytest.mark.parametrize("shifts,verdict", [
    ({1 / 3: [-.15] * 4 + [.15] * 2, 2 / 9: [-.15] * 6}, "reproduced"),
    ({1 / 3: [-.15] * 3 + [.15] * 3, 2 / 9: [0.0] * 3 + [.15] * 3}, "reproduced"),  # exactly half
    ({1 / 3: [.15] * 4 + [0.0] * 2, 2 / 9: [0.0] * 6}, "partly"),
    ({1 / 3: [.15] * 6, 2 / 9: [.15] * 5 + [-.15]}, "not reproduced"),
])
def test_random_baseline_rule(shifts, verdict):
    assert B.random_baseline_claim(_random_correct(shifts)).verdict == verdict


def test_random_baseline_counts_the_methods_worse_than_random_and_ignores_others():
    correct = _random_correct({1 / 3: [-.15] * 4 + [.15] * 2})
    correct[("dart", 1 / 3)] = shifted(-0.2)  # not attention-based
    row = B.random_baseline_claim(correct)
    assert "4 of 6 not better than random, 4 worse" in row.measured and row.chapter == B.CHAPTER


def test_random_baseline_is_not_tested_without_random():
    assert B.random_baseline_claim({("fastv", 0.25): BASE}).verdict == "not tested"


def _records(tokens: dict, budget=0.25) -> list[dict]:
    return [{"method": m, "budget": budget, "vision_per_layer": [t] * 8} for m, t in tokens.items()]


@pytest.mark.parametrize("deltas,verdict", [((.15, .15), "reproduced"), ((.15, -.15), "reproduced"),
                                            ((0.0, 0.0), "partly"), ((-.15, 0.0), "partly"),
                                            ((-.15, -.15), "not reproduced")])
def test_downsampling_rule(deltas, verdict):
    recs = _records({"downsample": 36, "fastv": 36, "pdrop": 37})
    correct = {("downsample", 0.25): BASE, ("fastv", 0.25): shifted(-deltas[0]),
               ("pdrop", 0.25): shifted(-deltas[1])}
    assert B.downsampling_claim(recs, correct).verdict == verdict


def test_downsampling_leaves_out_a_method_with_fewer_tokens():
    recs = _records({"downsample": 36, "fastv": 36, "sparsevlm": 30, "uniform": 36})
    correct = {(m, 0.25): BASE for m in ("downsample", "fastv", "uniform")}
    correct[("sparsevlm", 0.25)] = shifted(-0.3)  # would be beaten, but spent fewer tokens
    row = B.downsampling_claim(recs, correct)
    assert row.verdict == "partly" and "of 1 (method" in row.measured
    assert "SparseVLM at keep 25.0%" in row.measured
    assert B.downsampling_claim(recs, correct, methods=("sparsevlm",)).verdict == "not tested"


def test_downsampling_pairs_only_the_same_budget():
    recs = _records({"downsample": 36}) + _records({"fastv": 72}, budget=0.5)
    correct = {("downsample", 0.25): shifted(0.2), ("fastv", 0.5): BASE}
    assert B.downsampling_claim(recs, correct).verdict == "not tested"


def _fam_records(drops: dict) -> list[dict]:
    """Pruned records per budget: drops[budget] = {family: drop} from FULL."""
    return [{"method": m, "budget": b, "families": {f: FULL["families"][f] - d + off for f, d in fd.items()}}
            for b, fd in drops.items() for m, off in (("fastv", 0.01), ("pdrop", -0.01))]


FULL = {"method": "full", "budget": None, "families": {"text": 0.9, "attribute": 0.9, "count": 0.6}}


@pytest.mark.parametrize("drops,verdict", [
    ({0.5: {"text": .2, "attribute": .1, "count": .0}, 0.25: {"text": .4, "attribute": .3, "count": .1}},
     "reproduced"),
    ({0.5: {"text": .05, "attribute": .1, "count": .0}, 0.25: {"text": .4, "attribute": .3, "count": .1}},
     "partly"),
    ({0.5: {"text": .05, "attribute": .1, "count": .0}, 0.25: {"text": .2, "attribute": .3, "count": .1}},
     "not reproduced"),
])
def test_fragile_family_rule(drops, verdict):
    row = B.fragile_family_claim(FULL, [FULL] + _fam_records(drops))
    assert row.verdict == verdict and row.measured.startswith("keep 50.0%")


def test_fragile_family_compares_only_the_families_given():
    drops = {0.25: {"text": .2, "attribute": .1, "count": .3}}
    assert B.fragile_family_claim(FULL, _fam_records(drops)).verdict == "not reproduced"
    # count answered from its prior: not compared
    assert B.fragile_family_claim(FULL, _fam_records(drops), families=["text", "attribute"]).verdict == \
        "reproduced"
    assert B.fragile_family_claim(FULL, _fam_records(drops), families=["attribute", "count"]).verdict == \
        "not tested"


def test_no_winner_rule():
    def rec(m, b, acc):
        return {"method": m, "budget": b, "families": {"text": acc[0], "count": acc[1]}}
    split = [rec("fastv", 0.5, (.9, .5)), rec("pdrop", 0.5, (.8, .6)), rec("full", None, (1, 1))]
    assert B.no_winner_claim(split).verdict == "reproduced"
    one = [rec("fastv", 0.5, (.9, .6)), rec("pdrop", 0.5, (.8, .6)), rec("fastv", .25, (.7, .5)),
           rec("pdrop", .25, (.6, .4))]
    row = B.no_winner_claim(one)
    assert row.verdict == "not reproduced" and "FastV: 4 of 4" in row.measured  # a tie counts as a win
    assert B.no_winner_claim(one[:1]).verdict == "not tested"


def _invariance(changed: int, logit: float) -> dict:
    return {"n": 16, "batch_sizes": [1, 64], "differing": {64: changed}, "differing_ids": {64: []},
            "max_logit_diff": {64: logit}}


@pytest.mark.parametrize("results,verdict", [
    ({"full": _invariance(0, 1e-5), "fastv": _invariance(0, 2e-5)}, "not reproduced"),
    ({"full": _invariance(0, 1e-5), "fastv": _invariance(0, 0.05)}, "partly"),
    ({"full": _invariance(0, 1e-5), "fastv": _invariance(3, 2.0)}, "reproduced"),
    ({}, "not tested"),
])
def test_batch_rule(results, verdict):
    row = B.batch_claim(results)
    assert row.verdict == verdict
    if results:
        assert "unpruned, FastV" in row.measured and "batch 1 vs 64" in row.measured
