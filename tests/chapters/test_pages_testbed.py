"""The testbed chapter's facts and tables, on synthetic accuracy results and training records."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vtr.benchmarks.jsonl import Sample
from vtr.chapters import pages, runs
from vtr.chapters.pages import testbed as page
from vtr.chapters.tables import BENCHMARK_COLUMNS


def _testbed_acc(rng, fams=("attribute", "count", "exist")) -> dict:
    real, blank, prior = ({f: float(rng.uniform()) for f in fams} for _ in range(3))
    return {"families": real, "overall": float(np.mean(list(real.values()))), "n": 30, "exist_f1": 0.7,
            "blank_image": {"families": blank, "overall": float(np.mean(list(blank.values())))},
            "prior": dict(reversed(list(prior.items()))),  # another order than the families'
            "prior_overall": float(np.mean(list(prior.values())))}


def _bench_acc() -> dict:
    real = {"gqa": 0.6, "pope": 0.8, "mme": 1500.0}
    blank = {"gqa": 0.55, "pope": 0.5, "mme": 900.0}
    return {"families": real, "overall": 0.65, "n": 12, "exist_f1": None, "prior": None,
            "blank_image": {"families": blank, "overall": 0.4}}


def test_accuracy_table_on_the_testbed_keeps_the_families_order():
    acc = _testbed_acc(np.random.default_rng(0))
    table = page.accuracy_table(acc)
    assert list(table.index) == list(acc["families"]) + ["overall"]
    assert list(table.columns) == ["with the image", "blank image", "answer prior"]
    for f in acc["families"]:
        assert table.loc[f].tolist() == pytest.approx(
            [100 * acc["families"][f], 100 * acc["blank_image"]["families"][f], 100 * acc["prior"][f]])
    assert table.loc["overall", "answer prior"] == pytest.approx(100 * acc["prior_overall"])


def test_accuracy_table_on_benchmarks_names_them_and_has_no_prior():
    acc = _bench_acc()
    table = page.accuracy_table(acc)
    assert list(table.columns) == ["with the image", "blank image"]
    assert list(table.index) == [BENCHMARK_COLUMNS[b] for b in acc["families"]] + ["overall"]
    assert table.loc[BENCHMARK_COLUMNS["gqa"], "blank image"] == pytest.approx(55)
    assert table.loc[BENCHMARK_COLUMNS["mme"], "with the image"] == 1500.0  # MME stays a score
    assert table.loc["overall", "with the image"] == pytest.approx(65)


def test_models_table_has_two_columns_per_model():
    rng = np.random.default_rng(1)
    accs = {"a": _testbed_acc(rng), "b": _testbed_acc(rng)}
    table = page.models_table(accs, {"a": "8 layers", "b": "16 layers"})
    assert list(table.columns) == ["8 layers", "8 layers, blank image", "16 layers", "16 layers, blank image"]
    assert table.loc["count", "16 layers, blank image"] == pytest.approx(
        100 * accs["b"]["blank_image"]["families"]["count"])


def test_accuracy_facts_follow_the_runs_rules():
    acc = _testbed_acc(np.random.default_rng(2))
    f = page.accuracy_facts(acc)
    uses, near = runs.families_from_image(acc)
    assert f["tb-uses"] == (", ".join(uses) or "none") and f["tb-near-prior"] == (", ".join(near) or "none")
    assert f["tb-min-family"] == min(acc["families"].values())
    assert f["tb-target"] == ("met" if runs.meets_target(acc) else "not met")
    assert (f["tb-exist-f1"], f["tb-prior"], f["tb-n"]) == (0.7, acc["prior_overall"], 30)
    assert f["tb-prior-clause"].endswith(f"would score {acc['prior_overall']:.1%}")


def test_accuracy_facts_without_a_prior():
    f = page.accuracy_facts(_bench_acc())
    assert math.isnan(f["tb-prior"]) and "nan" not in f["tb-prior-clause"]
    assert f["tb-min-family"] == 0.6  # MME's score is no accuracy
    assert f["tb-exist-f1"] == 0.8  # POPE's paper metric is its F1
    assert f["tb-uses"] == "pope, mme" and f["tb-target"] == "not applicable here"


def _meta(**recipe) -> dict:
    base = {"batch": 32, "max_turns": 4, "lm_steps": 2800, "tune_steps": 900, "aux_floor": 0.2,
            "main_start": 0.3, "curriculum": 0.4, "threads": 2}
    return {"seconds": 600.0, "recipe": {**base, **recipe}}


def test_recipe_facts_describe_the_captions_and_scenes():
    f = page.recipe_facts(_meta(caption_steps=300, caption_every=4, scene_pool=6000))
    assert "300 steps of captioning" in f["rc-caption"] and "700 of the stage's 2800" in f["rc-caption"]
    assert "6000 training scenes" in f["rc-scenes"]
    assert (f["train-minutes"], f["rc-stage1"], f["train-threads"]) == (10.0, 2800, 2)
    plain = page.recipe_facts(_meta())
    assert plain["rc-caption"].startswith("There is no captioning") and "every" not in plain["rc-caption"]
    assert plain["rc-scenes"] == "each a freshly generated scene"


def _probe(target, others) -> dict:
    """A `runs.target_attention`-shaped probe: per query, each region's lift per layer."""
    last = {"target": list(target), "other objects": list(others), "background": [0.5] * len(target)}
    return {"n": 20, "last": last, "text_mean": last}


def test_attention_facts_read_the_layer_that_prefers_the_named_object_most():
    f = page.attention_facts(_probe([1.0, 3.0, 2.0], [1.0, 1.5, 1.0]))
    assert (f["ta-best-layer"], f["ta-target"], f["ta-ratio"]) == (1, 3.0, 2.0)
    assert f["ta-verdict"].startswith("The decoder prefers")
    weak = page.attention_facts(_probe([1.0, 3.0], [1.0, 2.5]))
    assert weak["ta-verdict"].startswith("The decoder looks at objects")
    assert "a ratio of 2.00 between the named object" in f["ta-reading"]
    none = page.attention_facts(None, "not here")
    assert none["ta-verdict"] == "not here" and math.isnan(none["ta-ratio"])
    assert none["ta-reading"] == "not here"  # no sentence of NaNs where the probe does not run


def test_lift_table_has_a_column_per_query_and_layer():
    table = page.lift_table(_probe([1.0, 3.0], [1.0, 2.5]))
    assert list(table.columns) == ["last L0", "last L1", "text_mean L0", "text_mean L1"]
    assert table.loc["target", "last L1"] == 3.0


def test_facts_are_plain_values_for_every_key_the_page_reads():
    rng = np.random.default_rng(3)
    accs = {"small": _testbed_acc(rng), "big": _testbed_acc(rng)}
    f = page.facts(accs, "small", "big", {"small": 8, "big": 16}, _meta(),
                   _meta(lm_steps=1000, tune_steps=400), _probe([1.0, 2.0], [1.0, 1.0]))
    assert f["deep-steps"] == 1400 and f["deep-layers"] == 16
    assert f["deep-overall"] == accs["big"]["overall"] and f["tb-overall"] == accs["small"]["overall"]
    assert all(isinstance(v, (int, float, str)) and not isinstance(v, np.generic) for v in f.values())


def test_first_per_family_and_titles():
    samples = [Sample(str(i), "x.png", f"q{i}", ["yes", "y"] if i == 1 else "no", fam)
               for i, fam in enumerate(["gqa", "gqa", "pope", "gqa", "mme"])]
    shown = page.first_per_family(samples)
    assert [s.id for s in shown] == ["0", "2", "4"]
    assert page.sample_title(samples[1], False).splitlines() == ["GQA", "q1", "-> yes"]
    assert page.sample_title(samples[0], True) == "gqa\nq0 ?\n-> no"
    long = Sample("9", "x.png", "word " * 20, "no", "gqa")
    assert len(page.sample_title(long, False, width=20).splitlines()[1]) == 20


def test_notices_say_the_sentence():
    table = pages.notice_table("The table of recipe variants")
    said = pages.testbed_only("The table of recipe variants").strip("*")
    assert table.shape == (1, 1) and table.iloc[0, 0] == said
    fig = pages.notice_figure("The figure")
    assert [t.get_text() for t in fig.texts] == [pages.testbed_only("The figure").strip("*")]
