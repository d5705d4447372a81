"""`vtr.chapters.pages.dyvte` on synthetic three-stage, sweep and DyVTE results."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vtr.chapters.pages import dyvte as page


def record(overall, flops, per_layer, n_vision=10.0, families=None):
    per_layer = np.asarray(per_layer, dtype=float)
    keep = float(per_layer.mean() / n_vision)
    return {"overall": overall, "flops_ratio": flops, "keep_rate": keep,
            "mean_tokens": float(per_layer.mean()), "vision_per_layer": per_layer.tolist(),
            "families": families or {"attribute": overall}, "speedup": 1.5}


def dyvte_result(L=4, seed_overall=(0.7, 0.5)):
    seeds = {}
    for i, acc in enumerate(seed_overall):
        # half the questions leave before layer 1 + i, the rest never
        kept = [10.0] * (1 + i) + [5.0] * (L - 1 - i)
        seeds[str(i)] = {"train": {"loss_curve": [1.0, 0.5], "exit_rate_per_layer": [0.5] * (L - 1)},
                         "test": record(acc, 0.6 + 0.1 * i, kept)}
    full = record(0.8, 1.0, [10.0] * L)
    return {"seeds": seeds, "full": full, "vtw": record(0.6, 0.5, [10.0] * 2 + [0.0] * (L - 2)),
            "fastv": record(0.65, 0.5, [10.0] + [4.0] * (L - 1)), "fastv_dyvte": record(0.6, 0.4, [10.0] * L)}


def mass_rows(L, peak):
    return [{"layer": layer, "text_to_image": 0.9 if layer == peak else 0.1, "image_to_image": 0.5,
             "text_to_text": 0.5}
            for layer in range(L)]


def test_stage_facts_find_the_earliest_cheap_exit_and_the_peak():
    accuracy = {"0": 0.2, "1": 0.3, "2": 0.795, "3": 0.81, "4": 0.8}  # saved keys are strings
    sweep = page.sweep_frame(accuracy)
    assert list(sweep["exit before layer"]) == [0, 1, 2, 3, 4]
    facts = page.stage_facts(pd.DataFrame(mass_rows(4, peak=2)), sweep)
    # the earliest layer within one point of keeping everything (0.8 - 0.01 = 0.79 <= 0.795)
    assert facts["ok"] == 2 and facts["ok-depth"] == pytest.approx(0.5)
    assert facts["peak"] == 2 and facts["layers"] == 4 and facts["middle"] == 2
    assert facts["full"] == 0.8 and facts["before1"] == 0.3 and facts["before-middle"] == 0.795


def test_kept_share_and_exit_shares_account_for_every_question():
    r = record(0.5, 0.5, [10.0, 10.0, 5.0, 2.0])
    kept = page.kept_share(r)
    assert kept.tolist() == pytest.approx([1.0, 1.0, 0.5, 0.2])
    shares = page.exit_shares(kept)
    assert shares.sum() == pytest.approx(1.0)  # every question leaves somewhere or never
    assert shares.tolist() == pytest.approx([0.0, 0.5, 0.3, 0.2])


def test_exit_rows_and_seed_summary_match_direct_computations():
    d = dyvte_result(L=4)
    rows = page.exit_rows(d, "8-layer", "testbed")
    assert [r["seed"] for r in rows] == [0, 1]
    kept0 = page.kept_share(d["seeds"]["0"]["test"])
    assert rows[0]["mean layers with vision"] == pytest.approx(kept0.sum())
    assert rows[0]["exited before the middle layer"] == pytest.approx(1 - kept0[2])
    assert rows[0]["most frequent exit"] == "before layer 1"
    summary = page.seed_summary(d)
    overall = [0.7, 0.5]
    assert summary["seeds"] == 2
    assert summary["change"] == pytest.approx(100 * np.mean([a - 0.8 for a in overall]))
    assert summary["spread"] == pytest.approx(100 * np.std(overall))
    assert summary["saved"] == pytest.approx(np.mean([0.4, 0.3]))


def test_run_rows_name_benchmark_columns_as_the_papers():
    d = dyvte_result()
    d["full"]["families"] = {"pope": 0.5, "gqa": 0.25}
    rows = page.run_rows(d, "m", "model")
    assert [r["run"] for r in rows] == ["unpruned", "DyVTE seed 0", "DyVTE seed 1", "VTW (same mean cost)",
                                        "FastV (same mean cost)", "FastV 0.5 + DyVTE"]
    assert rows[0]["POPE (F1)"] == pytest.approx(50) and "pope" not in rows[0]


def inputs(models, testbed=True):
    claim = SimpleNamespace(verdict="partly", measured="m")
    return {"models": models, "testbed": testbed,
            "mass": {m: mass_rows(4 * (i + 1), peak=i + 1) for i, m in enumerate(models)},
            "sweep": {m: {str(layer): 0.8 for layer in range(4 * (i + 1) + 1)} for i, m in enumerate(models)},
            "dyvte": {m: dyvte_result(L=4 * (i + 1)) for i, m in enumerate(models)}, "profile_note": "",
            "claims": {m: {"st": claim, "dy": claim, "cp": claim} for m in models},
            "generality": claim, "headline": "- x"}


def test_facts_give_the_first_and_the_last_model():
    data = inputs(["testbed", "testbed-deep"])
    facts = page.facts(data)
    assert facts["st-layers"] == 4 and facts["st-layers-deep"] == 8
    assert facts["st-peak"] == 1 and facts["st-peak-deep"] == 2
    exits = page.exits_table(data)
    assert exits.index.names == ["testbed", "seed"]
    assert facts["dy-never-deep"] == pytest.approx(exits.loc["16-layer"]["never exited"].mean())
    assert set(page.MARKDOWN) <= set(facts)


def test_one_model_profile_still_glues_every_key():
    two = page.facts(inputs(["a", "b"], testbed=False))
    one = page.facts(inputs(["a"], testbed=False))
    assert set(one) == set(two)
    assert one["st-layers"] == one["st-layers-deep"]
    assert page.runs_table(inputs(["a"], testbed=False)).index.names == ["model", "run"]
    assert page.labels(["a"], testbed=False) == {"a": "a"}
    assert page.labels(["testbed"], testbed=True) == {"testbed": "8-layer"}
