"""Hand-written pieces of vtr checked against well-kept libraries that do the same:

- the batched Kneedle of `vtr.methods.cls_knee` against `kneed.KneeLocator` (its difference curve on
  noisy long-tailed curves; its knee on smooth convex ones, where the two rules coincide);
- `vtr.analysis.bootstrap` / `paired_bootstrap` against `scipy.stats.bootstrap` (percentile
  method): the same resamples from the same generator give the same interval, and independent
  resamples agree within Monte-Carlo error;
- the F1 / precision / recall of `vtr.benchmarks.pope` and the testbed's `exist_f1` against
  `sklearn.metrics`.
The FLOPs formulas are checked against `torch.utils.flop_counter` in tests/engine/test_flops.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vtr.analysis import bootstrap, paired_bootstrap
from vtr.methods import cls_knee as K

kneed = pytest.importorskip("kneed")
scipy_stats = pytest.importorskip("scipy.stats")
sk_metrics = pytest.importorskip("sklearn.metrics")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- Kneedle vs kneed
def long_tailed(rng: np.random.Generator, family: str, n: int, shape: float) -> np.ndarray:
    """Sorted-descending samples of a long-tailed distribution (what CLS similarities look like sorted)."""
    if family == "lognormal":
        v = rng.lognormal(0.0, shape, n)
    elif family == "pareto":
        v = rng.pareto(shape, n)
    elif family == "exponential":
        v = rng.exponential(1.0, n) ** shape
    else:  # a power-law decay with multiplicative noise, sorted again
        v = (np.arange(1, n + 1) ** -shape) * rng.lognormal(0.0, 0.2, n)
    return np.sort(v)[::-1].copy()


curves = st.tuples(st.sampled_from(["lognormal", "pareto", "exponential", "noisy_power"]),
                   st.integers(3, 700), st.floats(0.3, 3.0), st.integers(0, 2**32 - 1))


def _locator(y: np.ndarray):
    return kneed.KneeLocator(np.arange(len(y)), y, curve="convex", direction="decreasing")


@SETTINGS
@given(st.lists(curves, min_size=1, max_size=4))
def test_kneedle_is_the_argmax_of_kneeds_difference_curve(specs):
    """vtr's knee is the global maximum of the same difference curve kneed computes (x and y
    normalised to [0, 1], y flipped): batched rows of different curves, each checked on its own."""
    n = min(s[1] for s in specs)
    rows = [long_tailed(np.random.default_rng(seed), fam, n, shape) for fam, _, shape, seed in specs]
    for y in rows:
        assume(y.max() - y.min() > 1e-9 * max(1.0, abs(y.max())))  # a flat curve has no knee in either
    knees = K.kneedle(torch.tensor(np.stack(rows)))
    for y, knee in zip(rows, knees.tolist()):
        diff = _locator(y).y_difference
        assert 0 <= knee < len(y)
        # the same point up to float rounding of two implementations (ties: any maximiser)
        assert diff[knee] >= diff.max() - 1e-12, (knee, int(diff.argmax()))


smooth = st.tuples(st.sampled_from(["exp", "power", "hyperbolic"]), st.integers(5, 700), st.floats(0.5, 40.0),
                   st.floats(-2.0, 2.0), st.floats(0.1, 10.0))


def smooth_convex(kind: str, n: int, k: float, offset: float, scale: float) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    if kind == "exp":
        y = np.exp(-k * t)
    elif kind == "power":
        y = (t + 1.0 / k) ** -1.5
    else:
        y = 1.0 / (1.0 + k * t)
    return offset + scale * y


@SETTINGS
@given(smooth)
def test_kneedle_equals_kneeds_offline_knee_on_smooth_convex_curves(spec):
    """On a strictly convex decreasing curve the difference curve is concave, so its only local
    maximum is the global one and kneed's offline rule (first local maximum after which the
    difference curve drops by its threshold) and vtr's (global maximum) pick the same point."""
    y = smooth_convex(*spec)
    loc = _locator(y)
    assume(loc.knee is not None)  # kneed declares no knee when the curve is nearly straight
    knee = int(K.kneedle(torch.tensor(y)))
    if knee != int(loc.knee):  # only a float tie between neighbours may separate them
        assert abs(loc.y_difference[knee] - loc.y_difference[int(loc.knee)]) <= 1e-12


def test_kneedle_differs_from_kneeds_first_knee_on_noisy_curves():
    """The documented difference: kneed's offline knee is the first local maximum of the difference
    curve after which it drops by the threshold S / (N - 1) before the next local minimum, so on a
    noisy curve it may stop at a ripple before the global maximum, or pass over a global maximum
    that does not drop enough and stop at a later point; vtr's knee is the global maximum. Where
    they differ, kneed's own difference curve is higher at vtr's knee."""
    rng = np.random.default_rng(3)
    earlier = later = 0
    for _ in range(200):
        y = long_tailed(rng, "lognormal", 64, 1.5)
        loc = _locator(y)
        knee = int(K.kneedle(torch.tensor(y)))
        if loc.knee is not None and int(loc.knee) != knee:
            assert loc.y_difference[knee] > loc.y_difference[int(loc.knee)]
            earlier += int(loc.knee) < knee
            later += int(loc.knee) > knee
    assert earlier > 0 and later > 0


# ---------------------------------------------------------------------- bootstrap vs scipy
def _scipy_interval(data, statistic, n_boot, seed, alpha, paired=False):
    res = scipy_stats.bootstrap(data, statistic, n_resamples=n_boot, confidence_level=1 - alpha,
                                method="percentile", vectorized=True, paired=paired,
                                rng=np.random.default_rng(seed))
    return res.confidence_interval, res.standard_error


@SETTINGS
@given(st.integers(2, 400), st.floats(0.02, 0.98), st.integers(0, 2**31), st.sampled_from([0.05, 0.1, 0.32]),
       st.integers(50, 1500))
def test_bootstrap_equals_scipy_with_the_same_resamples(n, p, seed, alpha, n_boot):
    correct = (np.random.default_rng(seed + 1).random(n) < p).astype(float)
    ours = bootstrap(correct, n_boot=n_boot, seed=seed, alpha=alpha)
    ci, se = _scipy_interval((correct,), np.mean, n_boot, seed, alpha)
    assert ours["mean"] == pytest.approx(correct.mean(), abs=1e-15)
    assert ours["lo"] == pytest.approx(ci.low, abs=1e-12)
    assert ours["hi"] == pytest.approx(ci.high, abs=1e-12)
    # vtr reports the population std of the resampled means, scipy the sample std (ddof=1)
    assert ours["std"] * np.sqrt(n_boot / (n_boot - 1)) == pytest.approx(se, rel=1e-9, abs=1e-15)


@SETTINGS
@given(st.integers(2, 400), st.floats(0.05, 0.95), st.floats(-0.3, 0.3), st.integers(0, 2**31),
       st.integers(50, 1500))
def test_paired_bootstrap_equals_scipy_paired(n, p, shift, seed, n_boot):
    rng = np.random.default_rng(seed + 7)
    a = (rng.random(n) < p).astype(float)
    b = (rng.random(n) < min(max(p + shift, 0.0), 1.0)).astype(float)
    ours = paired_bootstrap(a, b, n_boot=n_boot, seed=seed)
    ci, _ = _scipy_interval((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), n_boot, seed, 0.05,
                            paired=True)
    assert ours["mean"] == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert (ours["lo"], ours["hi"]) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


def test_bootstrap_agrees_with_scipy_on_independent_resamples():
    """Different generators: the percentile bounds agree within Monte-Carlo error. With n = 400
    Bernoulli(0.7) answers and B = 4000 resamples the standard error of a 2.5% bootstrap quantile
    is about sqrt(.025 .975 / B) / density = 0.0011 here, so two independent estimates differ by
    less than 0.0075 (5 standard errors of the difference, plus the 1/n grid of the means)."""
    correct = (np.random.default_rng(11).random(400) < 0.7).astype(float)
    for seed in range(5):
        ours = bootstrap(correct, n_boot=4000, seed=seed)
        ci, _ = _scipy_interval((correct,), np.mean, 4000, 1000 + seed, 0.05)
        assert abs(ours["lo"] - ci.low) < 0.0075 and abs(ours["hi"] - ci.high) < 0.0075


# ---------------------------------------------------------------------- binary metrics vs sklearn
@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["yes", "no"]), st.sampled_from(["yes", "no"])), min_size=1,
                max_size=200))
def test_pope_binary_metrics_equal_sklearn(pairs):
    from vtr.benchmarks.pope import binary_metrics

    labels, preds = [label for label, _ in pairs], [p for _, p in pairs]
    m = binary_metrics(labels, preds)
    t, q = np.array(labels) == "yes", np.array(preds) == "yes"
    prec, rec, f1, _ = sk_metrics.precision_recall_fscore_support(t, q, average="binary", zero_division=0)
    assert (m["precision"], m["recall"], m["f1"]) == (pytest.approx(prec), pytest.approx(rec),
                                                      pytest.approx(f1))
    assert m["accuracy"] == pytest.approx(sk_metrics.accuracy_score(t, q))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["yes", "no"]), st.sampled_from(["yes", "no", "red", "2"])),
                min_size=1, max_size=100))
def test_testbed_exist_f1_equals_sklearn(pairs):
    from vtr.benchmarks.jsonl import Sample
    from vtr.testbed.score import summarise

    samples = [Sample(id=str(i), image="", question="", answer=a, family="exist")
               for i, (a, _) in enumerate(pairs)]
    preds = [p for _, p in pairs]
    f1 = sk_metrics.f1_score(np.array([a for a, _ in pairs]) == "yes", np.array(preds) == "yes",
                             zero_division=0)
    assert summarise(samples, preds)["exist_f1"] == pytest.approx(f1)
