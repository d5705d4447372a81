"""The P-Sigmoid chapter's facts and tables, on synthetic method records."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vtr import analysis
from vtr.catalogue import display
from vtr.chapters.definitions import LLAVA_VISION_TOKENS
from vtr.chapters.pages import psigmoid as page

from .helpers import referenced_keys

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "05-psigmoid.md"
BUDGETS = (0.5, 0.25, 0.125)
FIELD = (1 / 3, 1 / 9)
METHODS = ("fastv", "psigmoid", "prumerge", "visionzip", "tome", "prumerge_plus")


def rec(method, budget, overall, n_layers=4, n_vision=8, **extra):
    keep = [n_vision] + [round(n_vision * (budget or 1))] * (n_layers - 1)
    return {"method": method, "budget": budget, "overall": overall, "keep_rate": budget or 1.0,
            "flops_ratio": budget or 1.0, "families": {"attribute": overall, "count": overall / 2},
            "vision_per_layer": keep, **extra}


def records(n_layers, failing=()):
    out = [rec("full", None, 0.9, n_layers)]
    for i, b in enumerate(BUDGETS):
        for j, m in enumerate(METHODS):
            out.append({"method": m, "budget": b, "error": "infeasible"} if (m, b) in failing
                       else rec(m, b, 0.8 - 0.1 * i - 0.01 * j, n_layers))
    return out


def field_table(n_layers, matched=True):
    keep, matched_rows, targets = [rec("full", None, 0.9, n_layers)], [rec("full", None, 0.9, n_layers)], {}
    for f in FIELD:
        low = f == FIELD[-1]
        for m in METHODS:
            failed = {"method": m, "budget": f, "field": f, "error": "layer 0 alone spends it"}
            keep.append(failed if low and m != "tome" else {**rec(m, f, 0.5, n_layers), "field": f})
        targets[str(f)] = None if low and not matched else 0.3
        for m in METHODS:
            none = {"method": m, "budget": None, "field": f, "error": "no plan"}
            matched_rows.append(none if targets[str(f)] is None
                                else {**rec(m, 0.3, 0.4, n_layers), "field": f, "kind": "flops"})
    tome = next(r for r in keep if r["method"] == "tome" and r["field"] == FIELD[-1])
    tome["vision_per_layer"][0] = 2  # it reduces the tokens before layer 0
    return {"keep": keep, "matched": matched_rows, "targets": targets}


def synthetic(models=("small", "deep"), depth=(4, 8)):
    rng = np.random.default_rng(0)
    n_layers = dict(zip(models, depth))
    correct = {(m, b, name): rng.integers(0, 2, size=20).astype(float) for m in models for b in BUDGETS
               for name in page.INTERVAL_METHODS if name != "random"}

    def row(v):
        return SimpleNamespace(verdict=v, measured=f"measured {v}")

    return {"models": list(models), "budgets": BUDGETS, "field_budgets": FIELD, "n_layers": n_layers,
            "ps": {m: {b: {"evaluations": 3 + i, "history": []} for i, b in enumerate(BUDGETS)}
                   for m in models},
            "recs": {m: records(n_layers[m], failing={("prumerge", 0.5)} if m == models[-1] else ())
                     for m in models},
            "speed": {m: {} for m in models},
            "field": {m: field_table(n_layers[m], matched=m != models[0]) for m in models},
            "field_speed": {m: {} for m in models}, "correct": correct, "profile_note": "",
            "psigmoid_claims": {m: row("not tested") for m in models}, "tokenpacker": row("not tested"),
            "headline": "- claims"}


def test_facts_cover_every_text_key_of_the_page():
    keys = {k for k in referenced_keys(NOTEBOOK.read_text()) if not k.startswith(("fig-", "tab-"))}
    assert keys <= set(page.facts(synthetic()))


def test_best_and_shares_read_the_layout():
    data = synthetic()
    facts = page.facts(data)
    small = [r for r in data["recs"]["small"] if r.get("budget") == 0.125]
    top = max(small, key=lambda r: (r["overall"] + r["overall"] / 2) / 2)
    assert facts["ps-best-0.125"] == display(top["method"])
    assert facts["ps-best-avg-0.125"] == pytest.approx(100 * (top["overall"] + top["overall"] / 2) / 2)
    assert facts["ps-fastv-avg-0.125"] == pytest.approx(100 * 0.75 * next(r["overall"] for r in small
                                                                          if r["method"] == "fastv"))
    full = 100 * 0.75 * 0.9
    visionzip = next(r for r in small if r["method"] == "visionzip")
    assert facts["ps-visionzip-share-0.125"] == pytest.approx(100 * 100 * 0.75 * visionzip["overall"] / full)
    assert np.isnan(facts["ps-prumerge-share-0.5-deep"])  # it could not run there
    assert facts["ps-prumerge-share-0.5-deep-text"] == "no value (it could not run here)"  # not "nan"
    assert facts["ps-visionzip-share-0.125-text"] == f"{facts['ps-visionzip-share-0.125']:.1f}%"
    assert facts["ps-best-avg-0.125-text"] == f"{facts['ps-best-avg-0.125']:.1f}"
    assert facts["ps-max-evaluations"] == 3 + len(BUDGETS) - 1
    assert facts["ps-deep-fastv-k"] == round(8 * 0.125)


def test_differences_are_the_paired_bootstrap_of_stored_answers():
    data = synthetic()
    facts = page.facts(data)
    for m, tag in (("small", ""), ("deep", "-deep")):
        want = analysis.paired_bootstrap(data["correct"][(m, 0.25, "psigmoid")],
                                         data["correct"][(m, 0.25, "fastv")])
        assert facts[f"ps-fastv-diff0.25{tag}"] == pytest.approx(100 * want["mean"])
        assert facts[f"ps-fastv-lo0.25{tag}"] == pytest.approx(100 * want["lo"])
    del data["correct"][("deep", 0.5, "fastv")]
    assert np.isnan(page.facts(data)["ps-fastv-diff0.5-deep"])


def test_intervals_skip_what_did_not_run_and_label_by_depth():
    data = synthetic()
    label = {"small": 4, "deep": 8}
    ci = page.intervals(data["correct"], label, BUDGETS)
    assert len(ci) == len(data["correct"])
    assert set(ci["layers"]) == {4, 8} and "random" not in set(ci["method"])
    got = ci[(ci.layers == 8) & (ci.budget == 0.5) & (ci.method == "pdrop")].iloc[0]
    assert got["accuracy"] == pytest.approx(100 * data["correct"][("deep", 0.5, "pdrop")].mean())
    by_name = page.intervals(data["correct"], {"small": "small", "deep": "deep"}, BUDGETS)
    assert "model" in by_name.columns
    assert page.scenario2(data["correct"], data["models"], label, BUDGETS).shape == (len(BUDGETS) * 2, 3)


def test_field_facts():
    data = synthetic()
    facts = page.facts(data)
    assert facts["field-n-tokens"] == round(FIELD[-1] * LLAVA_VISION_TOKENS)
    errors = {(m, way, r["method"], r["field"]) for m in data["models"] for way in page.WAYS
              for r in data["field"][m][way] if "error" in r}
    assert facts["field-n-skipped"] == len(errors)
    assert facts["field-best-keep"] == "ToMe"  # the only method that ran at the lowest budget
    assert facts["field-best-matched"] == "no method could run"  # no P-Sigmoid plan on the first model
    text = facts["field-shallow"]
    assert f"{1 / 4:.3f}" in text and "Of the 1 that run" in text and "1 (ToMe)" in text
    data["field"]["small"]["targets"][str(FIELD[-1])] = 0.2
    assert "every budget had a P-Sigmoid plan" in page.facts(data)["field-shallow"]


def test_skipped_lines_name_model_budget_and_reason():
    data = synthetic()
    lines = page.skipped(data["recs"], {"small": 4, "deep": 8})
    assert lines == ["8 layers: prumerge at 0.5: infeasible"]
    assert page.layers_text("llava") == "llava" and page.layers_text(np.int64(16)) == "16 layers"


def test_bo_scores_keep_scored_proposals_in_order():
    assert page.bo_scores({"history": [{"score": 0.5}, "skipped", {"x": 1}, {"score": 0.7}]}) == [0.5, 0.7]


def test_scored_from_table_lists_psigmoid_last():
    t = page.scored_from_table(("fastv", "unknown", "pdrop"), {"fastv": "previous", "pdrop": "current"})
    assert list(t.index) == ["fastv", "pdrop", "psigmoid"]


def test_facts_on_one_model_show_it_in_both_columns():
    facts = page.facts(synthetic(models=("only",), depth=(4,)))
    assert facts["ps-best-0.5"] == facts["ps-best-0.5-deep"]
    assert facts["ps-fastv-diff0.25"] == facts["ps-fastv-diff0.25-deep"]


def test_rows_that_could_not_run_form_a_table():
    data = synthetic()
    table = page.skipped_table(data["recs"], {"small": 4, "deep": 8})
    assert table.to_dict("records") == [{"testbed": "8 layers", "method": "prumerge", "budget": 0.5,
                                         "why it could not run": "infeasible"}]
    field = page.field_skipped_table(data["field"], {"small": 4, "deep": 8})
    assert len(field) == len(page.field_skipped(data["field"], {"small": 4, "deep": 8}))
    assert list(field.columns) == ["testbed", "budgets as", "method", "budget", "why it could not run"]
