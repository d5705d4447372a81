"""`vtr.plan.Plan`: the counts it builds, the plans it refuses (naming the layer), and its views."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtr.errors import InputError
from vtr.plan import Plan, PlanError


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.integers(0, 2000))
def test_from_rates_rounds_each_rate_then_never_lets_a_count_grow(rates, n_vision):
    want = np.minimum.accumulate(np.round(np.asarray(rates) * n_vision).astype(int))
    plan = Plan.from_rates(rates, n_vision)
    assert list(plan.keep) == [min(int(w), n_vision) for w in want]
    assert plan.n_layers == len(rates) and plan.n_vision == n_vision


@given(st.lists(st.integers(0, 50), min_size=1, max_size=30).map(lambda c: sorted(c, reverse=True)))
def test_rates_and_mean_keep_rate_follow_the_counts(counts):
    n = max(counts) + 3
    plan = Plan.from_counts(counts, n)
    assert plan.rates == pytest.approx([c / n for c in counts])
    assert plan.mean_keep_rate == pytest.approx(sum(counts) / (n * len(counts)))


def test_no_vision_tokens_gives_zero_rates():
    assert Plan.full(3, 0).rates == (0.0, 0.0, 0.0) and Plan.full(3, 0).mean_keep_rate == 0.0


def test_full_and_drop_at():
    assert Plan.full(4, 9).keep == (9, 9, 9, 9)
    assert Plan.drop_at(5, 9, layer=2, keep=3).keep == (9, 9, 3, 3, 3)
    assert Plan.drop_at(3, 9, layer=0, keep=0).keep == (0, 0, 0)
    assert Plan.drop_at(3, 9, layer=3, keep=0).keep == (9, 9, 9)  # nothing dropped


@pytest.mark.parametrize("make, words", [
    (lambda: Plan((4, 5), 8), "layer 1: keep=5 > keep=4 of layer 0"),
    (lambda: Plan((9,), 8), "layer 0: keep=9 is outside 0..8"),
    (lambda: Plan((3, -1), 8), "layer 1: keep=-1 is outside 0..8"),
    (lambda: Plan((), -1), "n_vision must be >= 0"),
    (lambda: Plan.from_counts([4, 2], 8, n_layers=3), "2 entries but the decoder has 3 layers"),
    (lambda: Plan.from_counts([4, 2.5], 8), "integers"),
    (lambda: Plan.from_rates([0.5], 8, n_layers=2), "1 entries but the decoder has 2 layers"),
    (lambda: Plan.from_rates([1.0, 1.5], 8), r"in \[0, 1\], got \[1.5\]"),
    (lambda: Plan.from_rates([float("nan")], 8), r"in \[0, 1\]"),
    (lambda: Plan.drop_at(3, 8, layer=4, keep=0), "layer must be in 0..3"),
])
def test_a_plan_that_cannot_run_is_refused_as_input(make, words):
    with pytest.raises(PlanError, match=words) as err:
        make()
    assert isinstance(err.value, InputError)


def test_check_for_names_the_mismatch():
    plan = Plan.full(4, 9)
    plan.check_for(4, 9)
    with pytest.raises(PlanError, match="plan has 4 layers but the decoder has 5"):
        plan.check_for(5, 9)
    with pytest.raises(PlanError, match="made for 9 vision tokens, the input has 10"):
        plan.check_for(4, 10)


def test_counts_are_plain_ints_and_the_plan_is_frozen():
    plan = Plan.from_counts([np.int64(5), 3.0], 6)
    assert plan.keep == (5, 3) and all(type(k) is int for k in plan.keep)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.keep = (1, 1)


@pytest.mark.parametrize("plan", [Plan((8, 4, 0), 8), Plan((6, 6), 6, encoder_keep=6)])
def test_json_round_trip(plan):
    assert Plan.from_json(plan.to_json()) == plan


def test_json_without_encoder_keep_reads_as_none():
    assert Plan.from_json('{"keep": [3, 1], "n_vision": 4}') == Plan((3, 1), 4, None)
