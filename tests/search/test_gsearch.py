import hashlib
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from vtr.plan import Plan
from vtr.search import Trace, TraceError, gsearch, max_evaluations

TOL = 0.01


def make_scorer(need, n_layers, n_vision, variant):
    """Synthetic scorers under the paper's assumption: feasible iff keep >= need pointwise."""
    weights = [0.02 + 0.03 * layer for layer in range(n_layers)]

    def score(plan):
        deficits = [max(0, need[layer] - k) for layer, k in enumerate(plan.keep)]
        if variant == "step":
            return 1.0 if not any(deficits) else 0.0
        if variant == "smooth":  # degrades with every missing token, >= 0.02 per token
            return 1.0 - sum(w * d for w, d in zip(weights, deficits))
        # "bonus": keeps improving (by < TOL in total) above the need
        bonus = 0.5 * TOL * sum(plan.keep) / (n_layers * n_vision + 1)
        return 0.9 - 0.3 * any(deficits) - 0.05 * sum(deficits) + bonus
    return score


def flops(plan):
    return sum((3 + k) ** 2 for k in plan.keep)


def brute_force(score, n_layers, n_vision, start, tol):
    ref = score(Plan.full(n_layers, n_vision))
    best = None
    for tail in itertools.product(range(n_vision + 1), repeat=n_layers - start):
        if any(tail[i] > tail[i - 1] for i in range(1, len(tail))):
            continue
        plan = Plan((n_vision,) * start + tail, n_vision)
        if score(plan) >= ref - tol and (best is None or flops(plan) < flops(best)):
            best = plan
    return best


class Counting:
    """Scorer wrapper that counts completed calls per plan and can simulate a kill."""
    name = "counting"

    def __init__(self, fn, kill_after=None):
        self.fn, self.kill_after, self.done = fn, kill_after, []

    def __call__(self, plan):
        if self.kill_after is not None and len(self.done) >= self.kill_after:
            raise KeyboardInterrupt
        self.done.append(plan.keep)
        return self.fn(plan)


@st.composite
def problems(draw):
    n_layers = draw(st.integers(1, 4))
    n_vision = draw(st.integers(0, 6))
    start = draw(st.integers(0, n_layers))
    tail = sorted(draw(st.lists(st.integers(0, n_vision), min_size=n_layers - start,
                                max_size=n_layers - start)), reverse=True)
    need = [0] * start + tail
    return n_layers, n_vision, start, need, draw(st.sampled_from(["step", "smooth", "bonus"]))


@settings(max_examples=120, deadline=None)
@given(problems())
def test_gsearch_matches_brute_force(problem):
    n_layers, n_vision, start, need, variant = problem
    scorer = Counting(make_scorer(need, n_layers, n_vision, variant))
    res = gsearch(scorer, n_layers, n_vision, TOL, start_layer=start, flops_fn=flops, progress=False)
    expected = brute_force(scorer.fn, n_layers, n_vision, start, TOL)
    assert res.plan == expected
    assert list(res.plan.keep[start:]) == need[start:]
    assert res.score >= res.reference - TOL
    assert res.evaluations == len(scorer.done) == len(set(scorer.done))  # memoised
    assert res.evaluations <= max_evaluations(n_layers, n_vision)
    assert res.flops_ratio == flops(res.plan)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 40), st.integers(0, 3), st.integers(0, 10**6))
def test_eval_bound_and_validity_for_any_scorer(n_layers, n_vision, start, seed):
    start = min(start, n_layers)

    def score(plan):  # arbitrary (non-monotone) deterministic scorer
        return hashlib.sha256(f"{seed}{plan.keep}".encode()).digest()[0] / 255

    scorer = Counting(score)
    res = gsearch(scorer, n_layers, n_vision, 0.1, start_layer=start, progress=False)
    assert res.evaluations == len(scorer.done) == len(set(scorer.done))
    assert res.evaluations <= max_evaluations(n_layers, n_vision)
    assert res.plan.keep[:start] == (n_vision,) * start
    assert res.score >= res.reference - 0.1


def test_bound_at_llava_scale():
    need = [576] + [max(0, 576 - 40 * layer) for layer in range(1, 32)]
    scorer = Counting(make_scorer(need, 32, 576, "smooth"))
    res = gsearch(scorer, 32, 576, 0.005, progress=False)
    assert list(res.plan.keep) == need
    assert res.evaluations == len(scorer.done) <= 32 * 10 + 1


def test_reference_given_and_tolerance_scale():
    # accuracy-like scorer: 0.70 at full, loses 0.002 per missing token of layer >= 1 under 3 tokens
    def acc(plan):
        return 0.70 - 0.002 * sum(max(0, 3 - k) for k in plan.keep[1:])
    res = gsearch(acc, 3, 4, 0.005, progress=False)          # 0.5 points: 2 missing tokens allowed
    assert res.reference == pytest.approx(0.70) and res.score >= 0.695 - 1e-12
    assert sum(max(0, 3 - k) for k in res.plan.keep[1:]) == 2
    res = gsearch(acc, 3, 4, 0.0, reference=0.70, progress=False)
    assert res.plan.keep == (4, 3, 3)


def test_memoised_rerun_makes_no_calls(tmp_path):
    path = tmp_path / "g.jsonl"
    fn = make_scorer([8, 6, 6, 3, 1, 0], 6, 8, "smooth")
    first = Counting(fn)
    res1 = gsearch(first, 6, 8, TOL, trace=Trace(path), progress=False)
    again = Counting(fn)
    res2 = gsearch(again, 6, 8, TOL, trace=Trace(path), progress=False)
    assert again.done == [] and res2 == res1 and res2.scorer_calls == 0
    assert len(Trace(path).scored) == res1.evaluations == len(first.done)


@pytest.mark.parametrize("kill_after", [1, 5, 12])
def test_resume_after_kill(tmp_path, kill_after):
    fn = make_scorer([32, 30, 20, 20, 9, 4, 4, 0], 8, 32, "smooth")
    clean = Counting(fn)
    expected = gsearch(clean, 8, 32, TOL, progress=False)
    path = tmp_path / "g.jsonl"
    killed = Counting(fn, kill_after=kill_after)
    with pytest.raises(KeyboardInterrupt):
        gsearch(killed, 8, 32, TOL, trace=Trace(path), progress=False)
    resumed = Counting(fn)
    res = gsearch(resumed, 8, 32, TOL, trace=Trace(path), progress=False)
    assert res == expected
    done = killed.done + resumed.done
    assert len(done) == len(set(done)) == len(clean.done)   # nothing scored twice
    assert resumed.done == clean.done[kill_after:]


def test_errors(tmp_path):

    def f(p):
        return 1.0

    with pytest.raises(ValueError, match="tolerance"):
        gsearch(f, 4, 8, -0.1, progress=False)
    with pytest.raises(ValueError, match="n_layers"):
        gsearch(f, 0, 8, 0.1, progress=False)
    with pytest.raises(ValueError, match="start_layer"):
        gsearch(f, 4, 8, 0.1, start_layer=5, progress=False)
    path = tmp_path / "g.jsonl"
    gsearch(f, 4, 8, 0.1, trace=Trace(path), progress=False)
    with pytest.raises(TraceError, match="tolerance"):
        gsearch(f, 4, 8, 0.2, trace=Trace(path), progress=False)
    with pytest.raises(TraceError, match="n_layers"):
        gsearch(f, 5, 8, 0.1, trace=Trace(path), progress=False)
