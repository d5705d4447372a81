"""`vtr.chapters.pages.cls_knee` on synthetic CLS-knee results."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from vtr.chapters.pages import cls_knee as page


def record(overall, keep, flops, families):
    return {"overall": overall, "keep_rate": keep, "flops_ratio": flops, "families": families}


def knee_result(seed=0, n=20, images=15):
    rng = np.random.default_rng(seed)
    curves = -np.sort(-rng.random((images, n)), axis=1)
    fams = {"attribute": 0.5, "exist": 0.75}
    return {"sorted_curves": curves.tolist(), "mean_curve": curves.mean(0).tolist(),
            "knees": {"kneedle": rng.integers(1, n, images).tolist(), "max_second_difference": [3] * images},
            "two_stage": record(0.6, 0.3, 0.4, fams), "stage1_only": record(0.7, 0.5, 0.6, fams),
            "detectors": {"max_second_difference": record(0.55, 0.2, 0.3, fams)},
            "at_share": record(0.5, 0.22, 0.25, fams), "share": 0.22}


def difference(a, b):
    d = a["overall"] - b["overall"]
    return {"mean": d, "lo": d - 0.1, "hi": d + 0.1}


def inputs(knee, full, n_layers, first):
    verdict = SimpleNamespace(verdict="partly", measured="m")
    return {"models": list(knee), "testbed": True, "knee": knee, "first": first, "full": full,
            "n_layers": n_layers, "variants": page.variant_rows(knee, full, n_layers, difference),
            "profile_note": "", "longtail": verdict, "cls22": verdict, "cls22_deep": verdict,
            "headline": "- x"}


def test_knee_stats_match_a_direct_computation():
    k = knee_result()
    stats = page.knee_stats(k, shown=12)
    knees = np.array(k["knees"]["kneedle"])
    assert stats == {"shown": 12, "images": 15, "mean": pytest.approx(knees.mean()),
                     "share": pytest.approx(knees.mean() / 20), "min": knees.min(), "max": knees.max()}
    assert page.knee_stats(k, shown=50)["shown"] == 15  # never more curves than images


def test_stage_rows_name_benchmark_columns_as_the_papers():
    k = knee_result()
    bench = record(0.4, 1.0, 1.0, {"pope": 0.5, "gqa": 0.25})
    rows = page.stage_rows({**k, "stage1_only": bench, "two_stage": bench}, bench)
    assert [r["run"] for r in rows] == ["unpruned", "stage 1 (knee)", "stages 1 + 2"]
    assert rows[0]["POPE (F1)"] == pytest.approx(50) and rows[0]["GQA"] == pytest.approx(25)
    assert rows[1]["vision keep %"] == pytest.approx(100)


def test_variants_skip_models_that_cannot_run_the_method_and_say_why():
    knee = {"a": knee_result(), "b": {"unsupported": "crops are not patches"}}
    full = {"a": record(0.8, 1.0, 1.0, {"attribute": 0.8})}
    rows = page.variant_rows(knee, full, {"a": 8}, difference)
    assert {r["model"] for r in rows} == {"a"}
    assert [r["stage 1"] for r in rows] == ["kneedle (default)", "max_second_difference", "fixed 22%"]
    assert rows[0]["change"] == pytest.approx(100 * (0.6 - 0.8)) and rows[0]["lo"] == pytest.approx(-30)
    assert "`b`" in page.unsupported_md(knee) and "crops are not patches" in page.unsupported_md(knee)
    assert page.unsupported_md({"a": knee["a"]}) == ""
    table = page.variants_table(rows, testbed=False)
    assert table.index.names == ["model", "stage 1"] and "layers" not in table
    assert page.variants_table(rows, testbed=True).index.names == ["layers", "stage 1"]
    assert page.variants_table([], testbed=True).empty


def test_facts_quote_the_first_supported_model_at_the_fixed_share():
    knee = {"next": {"unsupported": "crops"}, "a": knee_result(1), "b": knee_result(2)}
    knee["b"]["at_share"] = record(0.1, 0.9, 0.9, {"attribute": 0.1})
    full = {"a": record(0.8, 1.0, 1.0, {"attribute": 0.8}), "b": record(0.8, 1.0, 1.0, {"attribute": 0.8})}
    facts = page.facts(inputs(knee, full, {"a": 8, "b": 8}, first="a"))
    assert facts["knee-fixed-change"] == pytest.approx(100 * (0.5 - 0.8))  # a's row, not b's (same depth)
    assert facts["knee-fixed-keep"] == pytest.approx(22)
    assert facts["knee-two-keep"] == 0.3 and facts["knee-full-acc"] == 0.8
    assert facts["knee-mean"] == pytest.approx(np.mean(knee["a"]["knees"]["kneedle"]))
    assert set(page.MARKDOWN) <= set(facts)


def test_facts_without_a_supported_model_still_give_every_key():
    knee = {"next": {"unsupported": "crops"}}
    facts = page.facts(inputs(knee, {}, {}, first=None))
    full_keys = set(page.facts(inputs({"a": knee_result()}, {"a": record(0.8, 1, 1, {"x": 0.8})},
                                      {"a": 8}, first="a")))
    assert set(facts) == full_keys
    assert math.isnan(facts["knee-mean"]) and "crops" in facts["knee-unsupported"]
    assert page.stage_table(inputs(knee, {}, {}, first=None)).empty
