"""`vtr.chapters.pages.later_benchmarks` on synthetic results: the tables show what the rules and
the engine's measures give, in the book's sign and units."""
from __future__ import annotations

import numpy as np

from vtr.analysis import paired_bootstrap
from vtr.chapters import benchmark_claims as bc
from vtr.chapters.pages import later_benchmarks as page

B = 1 / 3
N = 40


def record(method, acc_fams, per_layer, flops, field=B):
    per_layer = np.asarray(per_layer, dtype=float)
    overall = float(np.mean(list(acc_fams.values())))
    rec = {"method": method, "budget": field, "kind": "keep", "overall": overall, "families": acc_fams,
           "keep_rate": float(per_layer.mean() / 12), "vision_per_layer": per_layer.tolist(),
           "flops_ratio": flops}
    return rec if field is None else {**rec, "field": field}


def model_data(shift=0.0):
    rng = np.random.default_rng(0)
    correct = {
        ("random", B): (rng.random(N) < 0.6).astype(float),
        ("fastv", B): (rng.random(N) < 0.6 + shift).astype(float),
        ("downsample", B): (rng.random(N) < 0.4).astype(float),
        ("divprune", B): (rng.random(N) < 0.8).astype(float),
    }
    full = record("full", {"text": 0.9, "count": 0.8}, [12, 12], 1.0, field=None)
    recs = [full,
            record("random", {"text": 0.5, "count": 0.7}, [12, 0], 0.5),
            record("fastv", {"text": 0.6, "count": 0.6}, [12, 0], 0.5),
            record("downsample", {"text": 0.3, "count": 0.5}, [3, 3], 0.3),
            record("divprune", {"text": 0.8, "count": 0.8}, [4, 4], 0.35)]
    batch = {"unpatched": {"n": N, "batch_sizes": [1, 64], "differing": {64: 0},
                           "max_logit_diff": {64: 1e-5}},
             "fastv": {"n": N, "batch_sizes": [1, 64], "differing": {64: 2}, "max_logit_diff": {64: 0.3}}}
    return {"records": recs, "correct": correct, "full": full, "families": ["text"], "batch": batch}


DATA = {"a": model_data(), "b": model_data(0.3)}
LABEL = {"a": 8, "b": 16}


def test_random_table_is_the_paired_difference_with_random():
    t = page.random_table(DATA, LABEL)
    ci = paired_bootstrap(DATA["a"]["correct"][("fastv", B)], DATA["a"]["correct"][("random", B)])
    cell = t.loc[(page.budget_label(B), "FastV"), "8 layers: minus random"]
    assert cell == page.interval(ci) and cell.startswith(f"{100 * ci['mean']:+.1f} (")
    assert t.loc[(page.budget_label(B), "FastV"), "8 layers: vs random"] == page.against(ci)
    assert page.against({"lo": 0.01, "hi": 0.2}) == "better"
    assert page.against({"lo": -0.2, "hi": -0.01}) == "worse"


def test_downsample_table_shows_the_tokens_each_spends():
    t = page.downsample_table(DATA, LABEL)
    row = t.loc[(page.budget_label(B), "DivPrune")]
    assert row["16 layers: tokens (downsample / method)"] == "3.0 / 4.0"  # equivalent tokens: mean per layer
    assert row["8 layers: downsample minus method"].startswith("-")  # 0.4 against 0.8 of the questions


def test_family_table_uses_the_books_sign_and_marks_image_families():
    t = page.family_table(DATA, LABEL)
    row = t.loc[("8 layers", page.budget_label(B))]
    # mean over the four pruned methods minus unpruned: negative is a drop
    assert row["text*"] == 100 * (np.mean([0.5, 0.6, 0.3, 0.8]) - 0.9)
    assert "count" in t.columns and "count*" not in t.columns


def test_equivalent_and_batch_tables():
    e = page.equivalent_table(DATA, LABEL)
    assert e.loc[(page.budget_label(B), "random"), "8 layers: equivalent tokens"] == 6.0
    assert e.loc[(page.budget_label(B), "random"), "8 layers: keep %"] == 50.0
    b = page.batch_table(DATA, LABEL)
    assert b.loc["unpatched model", "8 layers: answers changed"] == 0
    assert b.loc["FastV", "16 layers: answers changed"] == 2


def test_verdicts_are_the_rules_and_every_measurement_is_listed():
    verdicts = {m: bc.later_claims(m, d) for m, d in DATA.items()}
    t = page.verdict_table(verdicts, LABEL)
    assert list(t.columns) == ["source", "claim", "paper", "8 layers: verdict", "16 layers: verdict"]
    assert len(t) == len(bc.CLAIM_TEXT)
    batch = t[t["source"] == bc.CLAIM_TEXT["batch"][0]]
    assert (batch["8 layers: verdict"] == "reproduced").all()  # two answers changed with the batch
    md = page.verdicts_md(verdicts, LABEL)
    assert md.count("\n- ") == len(bc.CLAIM_TEXT) - 1 and "8 layers: " in md and "16 layers: " in md


def test_facts_count_the_batch_comparison():
    d = {"data": DATA, "labels": LABEL, "models": ["a", "b"], "profile_note": "",
         "verdicts": {m: bc.later_claims(m, DATA[m]) for m in DATA}, "errors": {"a": [], "b": []},
         "batch_sizes": (1, 64), "batch_budget": 0.25}
    f = page.facts(d)
    assert (f["later-batch-policies"], f["later-batch-changed"], f["later-batch-n"]) == (2, 4, N)
    assert f["later-batch-large"] == 64 and f["later-batch-budget"] == 0.25


def test_not_run_rows_name_the_model_and_reason():
    from vtr.chapters.pages import REASON

    rows = page.not_run_rows({"a": [{"method": "pdrop", "budget": B, "error": "cannot meet"}]}, LABEL)
    assert rows == [{"testbed": "8 layers", "method": "PyramidDrop", "budget": page.budget_label(B),
                     REASON: "cannot meet"}]


def test_tables_say_what_could_not_be_compared_instead_of_failing():
    empty = {"a": {**DATA["a"], "records": [DATA["a"]["full"]], "correct": {}}}
    for table in (page.random_table, page.downsample_table, page.equivalent_table, page.family_table):
        out = table(empty, LABEL)
        assert list(out.columns) == ["note"] and len(out) == 1, table.__name__


def test_batch_comparison_failures_are_listed_with_their_reason():
    from vtr.chapters.pages import REASON

    rows = page.not_run_rows({}, LABEL, {"b": {"downsample": "only LLaVA"}}, 0.25)
    assert rows == [{"testbed": "16 layers", "method": "downsampling", "budget": "25.0% (batch comparison)",
                     REASON: "only LLaVA"}]
