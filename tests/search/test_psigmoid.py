import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vtr.flops import DecoderShape, flops_ratio
from vtr.plan import Plan
from vtr.search import (BudgetError, SigmoidParams, Trace, TraceError, fit_to_plan, max_floor,
                        psigmoid_plan, psigmoid_rates, psigmoid_search, solve_budget)

params_st = st.builds(SigmoidParams, a=st.floats(-0.5, 1.5), k=st.floats(0.5, 300), b=st.floats(0, 1))


def flops_fn_for(n_layers, n_text=20):
    shape = DecoderShape(hidden=64, intermediate=172, n_layers=n_layers)
    return lambda plan: flops_ratio(plan, n_text, shape)


@settings(max_examples=60, deadline=None)
@given(params_st, st.integers(1, 40), st.integers(0, 5))
def test_curve_is_non_increasing_and_keeps_early_layers(params, n_layers, start):
    start = min(start, n_layers - 1)
    r = psigmoid_rates(params, n_layers, start)
    assert r.shape == (n_layers,) and np.all((r >= 0) & (r <= 1))
    assert np.all(r[:start] == 1.0) and np.all(np.diff(r) <= 1e-12)
    assert r[-1] >= params.b - 1e-12


@settings(max_examples=50, deadline=None)
@given(params_st, st.integers(2, 40), st.integers(1, 700), st.integers(0, 3), st.floats(0.01, 1.0))
def test_keep_budget_met_within_rounding(params, n_layers, n_vision, start, budget):
    start = min(start, n_layers - 1)
    try:
        sol = solve_budget(params, budget, "keep", n_layers=n_layers, n_vision=n_vision, start_layer=start)
    except BudgetError:  # only when even an empty tail exceeds the budget
        assert Plan.drop_at(n_layers, n_vision, start, 0).mean_keep_rate > budget
        return
    assert sol.plan == psigmoid_plan(sol.params, n_layers, n_vision, start)
    assert sol.achieved == sol.plan.mean_keep_rate
    assert sol.achieved <= budget + 1e-12 and budget - sol.achieved <= 1 / n_vision + 1e-12
    assert sol.clamped == (params.b > sol.params.b)


@settings(max_examples=25, deadline=None)
@given(params_st, st.integers(2, 32), st.integers(4, 700), st.floats(0.1, 1.0))
def test_flops_budget_met_within_rounding(params, n_layers, n_vision, budget):
    fn = flops_fn_for(n_layers)
    try:
        sol = solve_budget(params, budget, "flops", n_layers=n_layers, n_vision=n_vision, flops_fn=fn)
    except BudgetError:
        assert fn(Plan.drop_at(n_layers, n_vision, 1, 0)) > budget
        return
    assert sol.achieved == fn(sol.plan) <= budget + 1e-12
    # rounding tolerance: one more token in every searched layer would exceed the budget's slack
    bumped = Plan((n_vision,) + tuple(min(n_vision, k + 1) for k in sol.plan.keep[1:]), n_vision)
    assert budget <= fn(bumped) + 1e-12


def test_infeasible_floor_is_clamped_with_note():
    sol = solve_budget(SigmoidParams(0.5, 10, 0.6), 0.25, n_layers=16, n_vision=100)
    assert sol.clamped and "lowered" in sol.note and sol.params.b < 0.25
    assert abs(sol.achieved - 0.25) <= 0.01
    assert max_floor(0.25, n_layers=16, n_vision=100) == pytest.approx(sol.params.b)


@pytest.mark.parametrize("true", [SigmoidParams(0.45, 15, 0.2), SigmoidParams(0.3, 40, 0.05),
                                  SigmoidParams(0.6, 8, 0.0)])
def test_fit_to_plan_recovers_params(true):
    plan = psigmoid_plan(true, 32, 100_000, 1)
    fit = fit_to_plan(plan, 1)
    assert fit.a == pytest.approx(true.a, abs=0.01)
    assert fit.k == pytest.approx(true.k, rel=0.05)
    assert fit.b == pytest.approx(true.b, abs=0.01)


# ------------------------------------------------------------------ the BO search
L, N, BUDGET = 16, 64, 0.3
TARGET = solve_budget(SigmoidParams(0.5, 40, 0.12), BUDGET, n_layers=L, n_vision=N).plan


class Scorer:
    """Known optimum at TARGET (a plan of the family that meets the budget)."""
    name = "synthetic"

    def __init__(self, kill_after=None):
        self.kill_after, self.done = kill_after, []

    def __call__(self, plan):
        if self.kill_after is not None and len(self.done) >= self.kill_after:
            raise KeyboardInterrupt
        self.done.append(plan.keep)
        return 1.0 - float(np.mean((np.array(plan.rates) - np.array(TARGET.rates)) ** 2))


def run(scorer, **kw):
    kw = {"init": SigmoidParams(0.5, 3.0, 0.0), "n_iter": 12, "progress": False, **kw}
    return psigmoid_search(scorer, L, N, BUDGET, **kw)


def test_bo_improves_over_init_and_meets_budget():
    scorer = Scorer()
    res = run(scorer)
    init = res.history[0]
    assert init["params"]["k"] == pytest.approx(3.0)
    assert res.score > init["score"] and res.score > 0.995
    assert BUDGET - 1 / N <= res.budget_achieved <= BUDGET + 1e-12
    assert res.plan.mean_keep_rate == res.budget_achieved
    assert res.evaluations == len(scorer.done) == len(set(scorer.done)) <= 12
    assert res.flops_ratio is None


def test_deterministic_for_a_seed():
    assert run(Scorer(), seed=3) == run(Scorer(), seed=3)


def test_distinct_plans_only_are_evaluated():
    done = []

    def scorer(plan):  # coarse: 6 layers x 4 tokens
        done.append(plan.keep)
        return -abs(plan.keep[2] - 2)

    res = psigmoid_search(scorer, 6, 4, 0.5, n_iter=30, max_proposals=40, progress=False)
    plans = {tuple(h["keep"]) for h in res.history}
    assert res.evaluations == len(plans) == len(done) == len(set(done)) < len(res.history) == 40
    assert sum(h["new"] for h in res.history) == res.evaluations


def test_flops_budget_search():
    fn = flops_fn_for(L)
    res = run(Scorer(), kind="flops", flops_fn=fn, init=TARGET, n_iter=6)
    assert res.flops_ratio == res.budget_achieved == fn(res.plan) <= BUDGET + 1e-12


@pytest.mark.parametrize("kill_after", [1, 4, 9])
def test_resume_after_kill(tmp_path, kill_after):
    clean = Scorer()
    expected = run(clean)
    path = tmp_path / "p.jsonl"
    killed = Scorer(kill_after=kill_after)
    with pytest.raises(KeyboardInterrupt):
        run(killed, trace=Trace(path))
    resumed = Scorer()
    res = run(resumed, trace=Trace(path))
    assert res == expected
    done = killed.done + resumed.done
    assert len(done) == len(set(done)) == len(clean.done)
    assert resumed.done == clean.done[kill_after:]


def test_resume_with_more_iterations_continues(tmp_path):
    path = tmp_path / "p.jsonl"
    first, second = Scorer(), Scorer()
    run(first, n_iter=6, trace=Trace(path))
    res = run(second, n_iter=12, trace=Trace(path))
    assert res == run(Scorer(), n_iter=12)
    assert len(first.done) + len(second.done) == res.evaluations
    assert not set(first.done) & set(second.done)


def test_errors(tmp_path):
    s = Scorer()
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="budget"):
            psigmoid_search(s, L, N, bad, progress=False)
    with pytest.raises(BudgetError, match="infeasible"):
        psigmoid_search(s, L, N, 0.5 / L, progress=False)  # layer 0 alone keeps 1/L
    with pytest.raises(ValueError, match="flops_fn"):
        psigmoid_search(s, L, N, 0.5, kind="flops", progress=False)
    with pytest.raises(ValueError, match="layers"):
        psigmoid_search(s, L, N, 0.5, init=Plan.full(L + 1, N), progress=False)
    with pytest.raises(ValueError, match="n_layers"):
        psigmoid_search(s, 0, N, 0.5, progress=False)
    with pytest.raises(ValueError, match="steepness"):
        SigmoidParams(0.5, -1.0, 0.1)
    with pytest.raises(ValueError, match="floor"):
        SigmoidParams(0.5, 1.0, 1.1)
    path = tmp_path / "p.jsonl"
    run(Scorer(), n_iter=2, trace=Trace(path))
    with pytest.raises(TraceError, match="budget"):
        psigmoid_search(Scorer(), L, N, 0.4, n_iter=2, trace=Trace(path), progress=False,
                        init=SigmoidParams(0.5, 3.0, 0.0))
