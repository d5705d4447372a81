"""G-Search decided by the paired sequential test on the shipped testbed (small splits): the trace
says how many questions each decision used, close calls use more than clear ones, a rerun
resumes without a new evaluation, and the fixed-split search is saved under its own name."""
import json

import pytest

from vtr.experiments import searches
from vtr.models import load, load_split


@pytest.fixture(scope="module")
def runner():
    return load("testbed")


def test_decisions_use_the_looks_they_need_and_resume(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("VTR_RESULTS", str(tmp_path))
    val, extra = load_split("testbed", "val", 24), load_split("testbed", "val-extra", 24)
    trace = tmp_path / "g.trace.jsonl"
    out = searches.run_gsearch(runner, val, 0.005, start_layer=6, progress=False, extra=extra, trace=trace)
    used = [r["questions"] for r in out["trace"]]
    assert set(used) <= {24, 36, 48} and 48 in used  # the unpruned reference answers all 48
    assert out["sequential"]["looks"] == [24, 36, 48]
    records = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    assert all("questions" in r for r in records)
    again = searches.run_gsearch(runner, val, 0.005, start_layer=6, progress=False, extra=extra, trace=trace)
    assert again["new_evaluations"] == 0 and again["plan"] == out["plan"]


def test_a_plan_with_no_vision_tokens_is_rejected_at_the_first_look(runner, tmp_path, monkeypatch):
    from vtr.plan import Plan

    monkeypatch.setenv("VTR_RESULTS", str(tmp_path))
    val, extra = load_split("testbed", "val", 24), load_split("testbed", "val-extra", 24)
    score = searches.sequential_scorer(runner, val, extra, 0.005)
    full = score(Plan.full(8, runner.n_vision))
    blind = score(Plan.drop_at(8, runner.n_vision, 1, 0))
    assert score.last_meta == {"questions": 24, "settled": True} and blind < full - 0.005


def test_the_whole_val_split_decided_alone_is_saved_apart(runner):
    whole = load_split("testbed", "val")
    assert searches._variant(whole, "val", sequential=False) == "_fixed"
    assert searches._variant(whole, "val", sequential=True) == ""
