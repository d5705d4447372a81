"""The headline table's verdict rules (`vtr.chapters.claims`), on synthetic results: each rule
gives the verdict its docstring and the claim's thresholds state, whatever the testbed measured."""
import numpy as np
import pytest

from vtr.chapters import claims
from vtr.chapters import runs as R

FAMS = ("attribute", "count")


def accuracy(from_image: bool = True) -> dict:
    """A `testbed_accuracy()` result whose families are (or are not) answered from the image."""
    fams = {f: 0.9 for f in FAMS}
    blank = {f: (0.3 if from_image else 0.88) for f in FAMS}
    return {"overall": 0.9, "families": fams, "prior": {f: 0.3 for f in FAMS},
            "blank_image": {"overall": 0.3, "families": blank}}


def record(overall: float, **extra) -> dict:
    return {"overall": overall, "families": {f: overall for f in FAMS}, **extra}


@pytest.fixture
def image(monkeypatch):
    monkeypatch.setattr(R, "testbed_accuracy", lambda: accuracy(True))


@pytest.mark.parametrize("speedup,acc,verdict", [
    (2.3, 0.898, "reproduced"),     # > 2x, -0.2 points
    (2.3, 0.885, "partly"),         # -1.5 points: within 2
    (1.5, 0.899, "partly"),
    (1.1, 0.899, "not reproduced"),
    (2.3, 0.85, "not reproduced"),  # -5 points
])
def test_gsearch_rule(monkeypatch, image, speedup, acc, verdict):
    monkeypatch.setattr(R, "gsearch", lambda: {"full": record(0.9), "last": {
        "test": record(acc, speedup=speedup, flops_ratio=0.4), "search": {"flops_ratio": 0.4}}})
    assert claims.gsearch_claim().verdict == verdict


def test_a_no_drop_claim_is_not_tested_when_no_family_uses_the_image(monkeypatch):
    monkeypatch.setattr(R, "testbed_accuracy", lambda: accuracy(False))
    monkeypatch.setattr(R, "gsearch", lambda: {"full": record(0.9), "last": {
        "test": record(0.9, speedup=3.0, flops_ratio=0.4), "search": {"flops_ratio": 0.4}}})
    assert claims.image_families() == []
    assert claims.gsearch_claim().verdict == "not tested"


def test_worst_drop_takes_the_image_families_when_they_drop_more(image):
    full = record(0.9)
    pruned = {"overall": 0.89, "families": {"attribute": 0.7, "count": 0.9}}
    drop, said = claims.worst_drop(full, pruned)
    assert drop == pytest.approx(0.1) and "attribute, count" in said


def _tau(adjacent: float, first: float, layers: int = 8) -> dict:
    t = np.full((layers, layers), adjacent)
    t[0, 1:] = t[1:, 0] = first
    np.fill_diagonal(t, 1.0)
    return {"tau_mean": t.tolist(), "nested": [0.9] * (layers - 1), "overlap_k": 36}


@pytest.mark.parametrize("tau,first,verdict", [(0.8, 0.1, "reproduced"), (0.5, 0.1, "partly"),
                                               (0.5, 0.6, "not reproduced"), (0.2, 0.1, "not reproduced")])
def test_rank_rule(monkeypatch, tau, first, verdict):
    monkeypatch.setattr(R, "rank_consistency", lambda: {"last": _tau(tau, first), "text_mean": _tau(tau, first)})
    assert claims.rank_claim().verdict == verdict


def _table(p: float, f: float, same_plan: bool = False) -> list[dict]:
    return [{"method": "psigmoid", "budget": 0.125, "overall": p, "vision_per_layer": [144, 10, 5, 0]},
            {"method": "fastv", "budget": 0.125, "overall": f,
             "vision_per_layer": [144, 10, 5, 0] if same_plan else [144, 8, 8, 8]}]


@pytest.mark.parametrize("p,f,lo,verdict", [(0.80, 0.75, 0.01, "reproduced"), (0.76, 0.75, 0.001, "partly"),
                                            (0.80, 0.75, -0.01, "not reproduced")])
def test_psigmoid_rule_uses_the_paired_interval(monkeypatch, p, f, lo, verdict):
    monkeypatch.setattr(R, "methods_table", lambda: _table(p, f))
    monkeypatch.setattr(R, "paired_difference", lambda *a, **k: {"mean": p - f, "lo": lo, "hi": p - f + 0.02})
    assert claims.psigmoid_claim().verdict == verdict


def test_psigmoid_is_not_tested_when_both_methods_keep_the_same_tokens(monkeypatch):
    monkeypatch.setattr(R, "methods_table", lambda: _table(0.8, 0.7, same_plan=True))
    monkeypatch.setattr(R, "paired_difference", lambda *a, **k: {"mean": 0.1, "lo": 0.05, "hi": 0.15})
    assert claims.psigmoid_claim().verdict == "not tested"


@pytest.mark.parametrize("saved,acc,verdict", [(0.5, 0.899, "reproduced"), (0.3, 0.89, "partly"),
                                               (0.1, 0.9, "not reproduced")])
def test_dyvte_rule(monkeypatch, image, saved, acc, verdict):
    seeds = {s: {"test": record(acc, flops_ratio=1 - saved)} for s in (0, 1, 2)}
    monkeypatch.setattr(R, "dyvte", lambda: {"seeds": seeds, "full": record(0.9)})
    assert claims.dyvte_claim().verdict == verdict


@pytest.mark.parametrize("exit_layer,verdict", [(3, "reproduced"), (6, "partly"), (8, "not reproduced")])
def test_stages_rule(monkeypatch, image, exit_layer, verdict):
    L = 8
    acc = {str(l): (0.9 if l >= exit_layer else 0.5) for l in range(L + 1)}
    monkeypatch.setattr(R, "three_stages", lambda: [{}] * L)
    monkeypatch.setattr(R, "vtw_sweep", lambda: {"accuracy": acc})
    assert claims.stages_claim().verdict == verdict


def test_greedy_rule_holds_on_synthetic_problems():
    assert claims.greedy_claim(instances=40).verdict == "reproduced"
