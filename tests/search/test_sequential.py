"""The paired sequential test behind G-Search's decisions (`vtr.search.sequential`)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from vtr.search.sequential import interval, look_z, sequential_difference

LOOKS = (100, 250, 400)


def asked(plan_answers):
    calls = []

    def answers(lo, hi):
        calls.append((lo, hi))
        return plan_answers[lo:hi]
    return answers, calls


def test_the_level_is_split_over_the_looks():
    assert look_z(0.05, 1) == pytest.approx(1.959964, abs=1e-5)
    assert look_z(0.05, 3) == pytest.approx(norm.ppf(1 - 0.05 / 6))


def test_a_plan_that_answers_like_the_unpruned_model_stops_at_the_first_look():
    ref = np.r_[np.ones(300), np.zeros(100)]
    answers, calls = asked(ref.copy())
    d = sequential_difference(ref, answers, 0.005, LOOKS)
    assert d.questions == 100 and d.settled and d.difference == 0 and calls == [(0, 100)]
    assert d.score == pytest.approx(ref.mean())


def test_a_plan_far_below_the_tolerance_stops_at_the_first_look():
    ref = np.ones(400)
    plan = np.zeros(400)
    plan[::2] = 1  # 50 points worse
    answers, calls = asked(plan)
    d = sequential_difference(ref, answers, 0.005, LOOKS)
    assert d.questions == 100 and d.settled and d.hi < -0.005 and len(calls) == 1


def test_a_close_call_takes_every_look_and_the_point_estimate_decides():
    rng = np.random.default_rng(0)
    ref = (rng.random(400) < 0.9).astype(float)
    plan = ref.copy()
    flips = rng.choice(400, size=12, replace=False)
    plan[flips] = 1 - plan[flips]  # about as many gains as losses: inside the noise
    answers, calls = asked(plan)
    d = sequential_difference(ref, answers, 0.005, LOOKS)
    assert d.questions == 400 and not d.settled and calls == [(0, 100), (100, 250), (250, 400)]
    assert d.difference == pytest.approx((plan - ref).mean())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 0, 0, 1]), min_size=400, max_size=400),
       st.floats(min_value=0, max_value=0.05))
def test_g_searchs_rule_on_the_score_makes_the_tests_decision(diffs, tolerance):
    d = np.array(diffs, dtype=float)
    ref = np.where(d > 0, 0.0, 1.0)  # a plan gains where the reference is wrong, loses where it is right
    plan = ref + d
    out = sequential_difference(ref, lambda lo, hi: plan[lo:hi], tolerance, LOOKS)
    feasible = out.score >= ref.mean() - tolerance - 1e-12
    assert feasible == (out.difference >= -tolerance - 1e-12)
    if out.settled:  # the interval lies on the side the decision says
        assert (out.lo > -tolerance) == feasible and (out.hi < -tolerance) == (not feasible)


def test_the_interval_is_the_normal_one_and_infinite_on_one_question():
    d = np.array([1.0, 0.0, 0.0, -1.0])
    lo, hi = interval(d, 2.0)
    se = d.std(ddof=1) / 2
    assert (lo, hi) == pytest.approx((-2 * se, 2 * se))
    assert interval(np.array([1.0]), 2.0) == (-math.inf, math.inf)


@pytest.mark.parametrize("looks", [(100, 100, 400), (0, 400), (100, 300)])
def test_looks_must_increase_to_the_number_of_answers(looks):
    with pytest.raises(ValueError, match="looks"):
        sequential_difference(np.ones(400), lambda lo, hi: np.ones(hi - lo), 0.005, looks)
