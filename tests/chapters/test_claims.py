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
    monkeypatch.setattr(R, "testbed_accuracy", lambda model="testbed": accuracy(True))


def no_noise(monkeypatch, width: float = 0.0):
    """Paired intervals of synthetic records: the difference of their "overall" (or of the mean over
    `families`) +- `width`, as the bootstrap would give on a test set of that spread."""
    def diff(a, b, families=None):
        def acc(r):
            rs = r if isinstance(r, list) else [r]
            return float(np.mean([np.mean([x["families"][f] for f in families]) if families else x["overall"]
                                  for x in rs]))
        d = acc(a) - acc(b)
        return {"mean": d, "lo": d - width, "hi": d + width}
    monkeypatch.setattr(R, "record_difference", diff)


def speed(monkeypatch, speedup: float):
    monkeypatch.setattr(R, "methods_speed", lambda model="testbed": {"budgets": {"searched": [
        {"name": "gsearch", "speedup": speedup, "speedup_range": [speedup - 0.1, speedup + 0.1]}]}})


@pytest.mark.parametrize("speedup,flops,acc,width,verdict", [
    (2.3, 0.4, 0.898, 0.0, "reproduced"),       # > 2x, -0.2 points
    (2.3, 0.4, 0.898, 0.012, "partly"),         # the same point, but the interval allows a 1.4-point drop
    (2.3, 0.4, 0.885, 0.0, "partly"),           # -1.5 points: within 2
    (1.5, 0.4, 0.899, 0.0, "partly"),
    (2.3, 0.7, 0.899, 0.0, "partly"),           # measured 2.3x, but the FLOPs predict 1.4x
    (1.1, 0.4, 0.899, 0.0, "not reproduced"),
    (2.3, 0.4, 0.85, 0.0, "not reproduced"),    # -5 points
])
def test_gsearch_rule(monkeypatch, image, speedup, flops, acc, width, verdict):
    no_noise(monkeypatch, width)
    speed(monkeypatch, speedup)
    monkeypatch.setattr(R, "gsearch", lambda model="testbed": {"full": record(0.9), "last": {
        "test": record(acc, flops_ratio=flops), "search": {"flops_ratio": flops}}})
    assert claims.gsearch_claim().verdict == verdict


def test_a_no_drop_claim_is_not_tested_when_no_family_uses_the_image(monkeypatch):
    no_noise(monkeypatch)
    speed(monkeypatch, 3.0)
    monkeypatch.setattr(R, "testbed_accuracy", lambda model="testbed": accuracy(False))
    monkeypatch.setattr(R, "gsearch", lambda model="testbed": {"full": record(0.9), "last": {
        "test": record(0.9, flops_ratio=0.4), "search": {"flops_ratio": 0.4}}})
    assert claims.image_families() == []
    assert claims.gsearch_claim().verdict == "not tested"


def test_the_judged_drop_takes_the_image_families_when_they_drop_more(monkeypatch, image):
    no_noise(monkeypatch, 0.01)
    full = record(0.9)
    pruned = {"overall": 0.89, "families": {"attribute": 0.7, "count": 0.9}}
    drop, said = claims.judged_drop(full, pruned)
    assert drop == pytest.approx(0.11) and "from the image" in said


def test_an_interval_shared_by_overall_and_the_image_families_is_said_once(monkeypatch, image):
    no_noise(monkeypatch, 0.01)
    _, said = claims.judged_drop(record(0.9), record(0.8))  # the same change everywhere
    assert said.count("points") == 1 and "overall and on the families answered from the image" in said
    _, said = claims.judged_drop(record(0.9), {"overall": 0.89, "families": {"attribute": 0.7, "count": 0.9}})
    assert said.count("points") == 2


def test_the_judged_drop_is_the_upper_end_of_the_interval(monkeypatch, image):
    no_noise(monkeypatch, 0.015)
    drop, _ = claims.judged_drop(record(0.9), record(0.9))
    assert drop == pytest.approx(0.015)  # no drop measured, but one of 1.5 points is not excluded


def _tau(adjacent: float, first: float, layers: int = 8) -> dict:
    t = np.full((layers, layers), adjacent)
    t[0, 1:] = t[1:, 0] = first
    np.fill_diagonal(t, 1.0)
    return {"tau_mean": t.tolist(), "nested": [0.9] * (layers - 1), "overlap_k": 36}


@pytest.mark.parametrize("tau,first,verdict", [(0.8, 0.1, "reproduced"), (0.5, 0.1, "partly"),
                                               (0.5, 0.6, "not reproduced"), (0.2, 0.1, "not reproduced")])
def test_rank_rule(monkeypatch, tau, first, verdict):
    monkeypatch.setattr(R, "rank_consistency",
                        lambda model="testbed": {"last": _tau(tau, first), "text_mean": _tau(tau, first)})
    assert claims.rank_claim().verdict == verdict


def _table(p: float, f: float, same_plan: bool = False) -> list[dict]:
    return [{"method": "psigmoid", "budget": 0.125, "overall": p, "vision_per_layer": [144, 10, 5, 0]},
            {"method": "fastv", "budget": 0.125, "overall": f,
             "vision_per_layer": [144, 10, 5, 0] if same_plan else [144, 8, 8, 8]}]


@pytest.mark.parametrize("p,f,lo,verdict", [(0.80, 0.75, 0.01, "reproduced"), (0.76, 0.75, 0.001, "partly"),
                                            (0.80, 0.75, -0.01, "not reproduced")])
def test_psigmoid_rule_uses_the_paired_interval(monkeypatch, p, f, lo, verdict):
    monkeypatch.setattr(R, "methods_table", lambda model="testbed": _table(p, f))
    monkeypatch.setattr(R, "paired_difference", lambda *a, **k: {"mean": p - f, "lo": lo, "hi": p - f + 0.02})
    assert claims.psigmoid_claim().verdict == verdict


def test_psigmoid_is_not_tested_when_both_methods_keep_the_same_tokens(monkeypatch):
    monkeypatch.setattr(R, "methods_table", lambda model="testbed": _table(0.8, 0.7, same_plan=True))
    monkeypatch.setattr(R, "n_layers", lambda model="testbed": 8)
    monkeypatch.setattr(R, "paired_difference", lambda *a, **k: {"mean": 0.1, "lo": 0.05, "hi": 0.15})
    assert claims.psigmoid_claim().verdict == "not tested"


@pytest.mark.parametrize("saved,acc,verdict", [(0.5, 0.899, "reproduced"), (0.3, 0.89, "partly"),
                                               (0.1, 0.9, "not reproduced")])
def test_dyvte_rule(monkeypatch, image, saved, acc, verdict):
    no_noise(monkeypatch)
    seeds = {s: {"test": record(acc, flops_ratio=1 - saved)} for s in (0, 1, 2)}
    monkeypatch.setattr(R, "dyvte", lambda model="testbed": {"seeds": seeds, "full": record(0.9)})
    assert claims.dyvte_claim().verdict == verdict


@pytest.mark.parametrize("exit_layer,verdict", [(3, "reproduced"), (6, "partly"), (8, "not reproduced")])
def test_stages_rule(monkeypatch, image, exit_layer, verdict):
    L = 8
    acc = {str(layer): (0.9 if layer >= exit_layer else 0.5) for layer in range(L + 1)}
    monkeypatch.setattr(R, "three_stages", lambda model="testbed": [{}] * L)
    monkeypatch.setattr(R, "vtw_sweep", lambda model="testbed": {"accuracy": acc})
    assert claims.stages_claim().verdict == verdict


def test_greedy_rule_holds_on_synthetic_problems():
    assert claims.greedy_claim(instances=40).verdict == "reproduced"


def test_the_headline_judges_each_testbed_on_its_own_results(monkeypatch):
    taus = {"testbed": 0.2, "testbed-deep": 0.8}
    monkeypatch.setattr(R, "rank_consistency", lambda model="testbed": {
        "last": _tau(taus[model], 0.1), "text_mean": _tau(taus[model], 0.1)})
    asked = []

    def model_free(model="testbed"):
        asked.append(model)
        return claims._judged("greedy", "checked", "reproduced", model)

    monkeypatch.setattr(claims, "CLAIMS", (claims.rank_claim, model_free))
    monkeypatch.setattr(claims, "MODEL_FREE", (model_free,))
    table = claims.headline(("testbed", "testbed-deep"), later=False)
    assert table[0].verdicts() == {"testbed": "not reproduced", "testbed-deep": "reproduced"}
    assert asked == ["testbed"] and table[1].verdicts() == {"testbed": "reproduced",
                                                            "testbed-deep": "reproduced"}
    assert [c.claim for c in claims.depth_changes(table, ("testbed", "testbed-deep"))] == [table[0].claim]


def test_the_headline_ends_with_the_later_benchmarks_rows_per_model(monkeypatch):
    from vtr.chapters import benchmark_claims as bc

    monkeypatch.setattr(claims, "CLAIMS", ())
    verdict = {"testbed": "reproduced", "testbed-deep": "partly"}
    monkeypatch.setattr(bc, "later_claims", lambda model: [
        bc._judged(key, f"measured on {model}", verdict[model], model) for key in bc.CLAIM_TEXT])
    table = claims.headline(("testbed", "testbed-deep"))
    assert [row.claim for row in table] == [text[1] for text in bc.CLAIM_TEXT.values()]
    assert table[0].verdicts() == verdict and table[0].chapter == bc.CHAPTER
    assert table[-1].results["testbed-deep"][0] == "measured on testbed-deep"


def test_a_chapters_verdict_list_shows_each_testbed_and_a_model_free_claim_once(monkeypatch):
    taus = {"testbed": 0.2, "testbed-deep": 0.8}
    monkeypatch.setattr(R, "rank_consistency", lambda model="testbed": {
        "last": _tau(taus[model], 0.1), "text_mean": _tau(taus[model], 0.1)})
    monkeypatch.setattr(R, "n_layers", lambda model="testbed": {"testbed": 8, "testbed-deep": 16}[model])
    md = claims.verdicts_md(claims.rank_claim, claims.tokenpacker_claim, models=("testbed", "testbed-deep"))
    rank, packer = md.splitlines()
    assert "8 layers:" in rank and "16 layers:" in rank
    assert "**not reproduced**" in rank and "**reproduced**" in rank
    assert "layers:" not in packer and packer.count("**not tested**") == 1


def test_cls_claims_are_not_tested_on_a_model_the_cls_analysis_cannot_run(monkeypatch):
    reason = "encoder-side reduction needs one image per sample"
    monkeypatch.setattr(R, "cls_knee", lambda model="testbed": {"unsupported": reason})
    for check in (claims.longtail_claim, claims.cls22_claim):
        row = check("llava-next-tiny")
        assert row.verdict == "not tested" and reason in row.measured and "llava-next-tiny" in row.measured


@pytest.mark.parametrize("check", [claims.tokenpacker_claim, claims.generality_claim])
def test_model_free_claims_speak_of_the_testbed_only_on_the_testbed(monkeypatch, check):
    assert "testbed" in check().measured
    monkeypatch.setattr(R, "is_testbed", lambda: False)
    row = check()
    assert "testbed" not in row.measured and row.verdict == "not tested"
