"""The G-Search chapter's facts and tables, on synthetic search results."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vtr.chapters import tables
from vtr.chapters.pages import gsearch as page

from .helpers import referenced_keys

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "04-gsearch.md"
LOOKS = [4, 6, 8]


def search(plan, n_vision, questions):
    trace = [{"plan": {"keep": [n_vision] * len(plan), "n_vision": n_vision, "encoder_keep": None},
              "score": 0.9, "flops_ratio": 1.0, "questions": LOOKS[-1]}]
    trace += [{"plan": {"keep": list(plan), "n_vision": n_vision, "encoder_keep": None}, "score": 0.8,
               "flops_ratio": 0.5, "questions": q} for q in questions]
    return {"plan": list(plan), "n_vision": n_vision, "flops_ratio": 0.4,
            "keep_rate": float(np.mean(plan)) / n_vision,
            "evaluations": len(trace), "reference": 0.9, "sequential": {"looks": LOOKS}, "trace": trace}


def record(overall, families, keep=0.5, flops=0.5):
    return {"overall": overall, "families": families, "keep_rate": keep, "flops_ratio": flops, "n": 10}


FAMS = {"attribute": 0.9, "exist": 0.8}


def synthetic(models=("small", "deep"), plans=None, families=FAMS):
    plans = plans or {"small": [8, 6, 3, 0], "deep": [8, 8, 6, 5, 3, 3, 0, 0]}
    gs = {m: {"last": {"search": search(plans[m], 8, [4, 6, 8, 4]), "test": record(0.7, families)},
              "full": record(0.8, families, 1.0, 1.0)} for m in models}
    gs[models[0]]["text_mean"] = {"search": search(plans[models[0]], 8, [4]), "test": record(0.6, families)}
    timed = [{"name": "gsearch", "speedup": 1.5 + i, "speedup_range": [1.2, 1.8 + i], "flops_ratio": 0.6}
             for i in range(len(models))]
    speed = {m: {"batch": 4, "budgets": {"searched": [t]}} for m, t in zip(models, timed)}

    def row(v):
        return SimpleNamespace(verdict=v, measured=f"measured {v}")

    return {"models": list(models), "gs": gs, "speed": speed,
            "queries": {m: ("last", "text_mean") if m == models[0] else ("last",) for m in models},
            "n_layers": {m: len(plans[m]) for m in models},
            "cis": {m: {"mean": -0.01, "lo": -0.03, "hi": 0.01} for m in models},
            "sources": [{"method": "fastv", "budget": 0.5, "default": "previous", "keep_rate": 0.5,
                         "previous": 0.8, "current": 0.7,
                         "difference": {"mean": 0.1, "lo": 0.05, "hi": 0.15}},
                        {"method": "gsearch", "budget": None, "default": "previous", "keep_rate": 0.4,
                         "previous": 0.8, "current": 0.8,
                         "difference": {"mean": 0.0, "lo": -0.02, "hi": 0.02}}],
            "deep_steps": 100, "profile_note": "", "greedy": row("reproduced"),
            "gsearch_claims": {m: row("partly") for m in models},
            "sshape_claims": {models[0]: row("partly"), models[-1]: row("reproduced")},
            "headline": "- claims"}


def test_facts_cover_every_text_key_of_the_page():
    keys = {k for k in referenced_keys(NOTEBOOK.read_text()) if not k.startswith(("fig-", "tab-"))}
    assert keys <= set(page.facts(synthetic()))


def test_facts_on_one_model_compare_it_with_itself():
    facts = page.facts(synthetic(models=("only",), plans={"only": [8, 4, 2, 0]}))
    assert facts["gs-plan"] == facts["gs-plan-deep"] == "8, 4, 2, 0"
    assert facts["gs-keep-word"] == "the same as"
    assert facts["ss-depth-reading"] == "the same at both depths"


def test_labels_name_models_by_depth_only_when_it_tells_them_apart():
    assert page.labels({"a": 8, "b": 16}) == {"a": 8, "b": 16}
    assert page.labels({"a": 8, "b": 8}) == {"a": "a", "b": "b"}


@pytest.mark.parametrize("ci, reading", [({"lo": -1, "hi": 1}, "contains zero"),
                                          ({"lo": -2, "hi": -1}, "lies below zero"),
                                          ({"lo": 1, "hi": 2}, "lies above zero")])
def test_interval_reading(ci, reading):
    assert page.interval_reading(ci) == reading


def test_compared():
    assert [page.compared(a, 1, "less", "more") for a in (0, 1, 2)] == ["less", "the same as", "more"]


def test_half_depth_is_the_first_depth_below_one_half():
    s = {"plan": [10, 9, 6, 4, 1], "n_vision": 10}
    depth = np.linspace(0, 1, 5)
    assert page.half_depth(s) == f"{depth[3]:.2f}"
    assert page.half_depth({"plan": [10, 10], "n_vision": 10}) == "nowhere"


def test_copy_pairs_groups_the_layers_grown_from_one():
    plan = [8, 8, 6, 5, 3, 3, 0, 0]
    groups = [plan[i:i + 2] for i in range(0, 8, 2)]
    assert page.copy_pairs(plan, 4) == (4, sum(g[0] == g[1] for g in groups))
    assert page.copy_pairs(plan, 8) == (8, 8)  # same depth: one layer per group


def test_looks_count_every_evaluation_of_each_model():
    data = synthetic()
    label = page.labels(data["n_layers"])
    searches = {m: data["gs"][m]["last"]["search"] for m in data["models"]}
    used = page.evaluations_used(searches, label)
    table = page.looks_table(used, LOOKS)
    for m, s in searches.items():
        q = np.array([r["questions"] for r in s["trace"]])
        row = table.loc[label[m]]
        assert row["evaluations"] == len(q) and row["mean"] == pytest.approx(q.mean())
        assert [row[f"at {n}"] for n in LOOKS] == [int((q == n).sum()) for n in LOOKS]
        shares = page.looks_shares(used, label[m], LOOKS)
        assert shares == pytest.approx({"mean": q.mean(), "first": np.mean(q == LOOKS[0]),
                                        "last": np.mean(q == LOOKS[-1])})


def test_family_columns_use_the_papers_names_on_a_benchmark_profile():
    assert page.family_columns(record(0.5, FAMS)) == {f: 100 * v for f, v in FAMS.items()}
    bench = record(0.5, {"pope": 0.8, "gqa": 0.5})
    assert page.family_columns(bench) == tables.family_scores(bench)
    assert set(page.family_columns(bench)) == {tables.BENCHMARK_COLUMNS[b] for b in ("pope", "gqa")}


def test_test_table_has_unpruned_and_every_query_per_model():
    data = synthetic()
    t = page.test_table(data["gs"], data["queries"], data["n_layers"])
    assert len(t) == sum(1 + len(q) for q in data["queries"].values())
    first = data["models"][0]
    got = t.loc[(page.row_label(first, data["n_layers"][first]), "G-Search (text_mean)")]
    assert got["overall"] == pytest.approx(100 * data["gs"][first]["text_mean"]["test"]["overall"])


def test_models_table_and_speed_facts_read_the_searched_timing():
    data = synthetic()
    t = page.models_table(data["gs"], data["speed"], data["cis"], data["n_layers"])
    assert list(t["prefill speedup"]) == [data["speed"][m]["budgets"]["searched"][0]["speedup"]
                                          for m in data["models"]]
    facts = page.facts(data)
    assert facts["gs-speedup-word"] == "larger than"  # the deep model's synthetic speedup is 1 higher


def test_sources_facts_count_decided_plans():
    data = synthetic()
    src = page.sources_table(data["sources"])
    decided = [r for r in data["sources"] if r["difference"]["lo"] > 0 or r["difference"]["hi"] < 0]
    assert page.sources_facts(src) == {"src-n": len(data["sources"]), "src-decided": len(decided),
                                       "src-prev-wins": sum(r["difference"]["mean"] > 0 for r in decided)}
    assert page.sources_facts(page.sources_table([]))["src-n"] == 0


def test_curve_fits_the_searched_rates():
    c = page.curve({"plan": [16, 16, 12, 4, 1, 0], "n_vision": 16})
    assert c["rates"].tolist() == [k / 16 for k in [16, 16, 12, 4, 1, 0]]
    assert len(c["fitted"]) == len(c["depth"]) == 6
    assert isinstance(page.looks_table(pd.DataFrame(columns=["layers", "questions"]), LOOKS), pd.DataFrame)
