"""`vtr.chapters.paper_scale`: the GPU time model behaves as its docstring says."""
import pytest

from vtr.chapters import paper_scale as P
from vtr.experiments.sizes import SIZES
from vtr.plan import Plan

MODEL, GPU, WORK = P.Model(), P.GPU(), P.Workload()


def test_pruning_cuts_the_estimated_time_and_decode_is_memory_bound():
    full = Plan.full(MODEL.shape.n_layers, MODEL.n_vision)
    t_full = P.seconds_per_sample(full, MODEL, GPU, answer_tokens=3)
    t_small = P.seconds_per_sample(P.at_budget(MODEL, 0.125), MODEL, GPU, answer_tokens=3)
    assert t_small["prefill"] < t_full["prefill"] and t_small["decode"] <= t_full["decode"]
    # one decode step reads the 7B decoder's weights once per batch: at least that long
    per_step = MODEL.decoder_params * MODEL.bytes_per_value / GPU.batch / GPU.bytes_per_s
    assert t_full["decode"] >= 3 * per_step


@pytest.mark.parametrize("budget", [0.5, 0.25, 0.125])
def test_at_budget_spends_the_budget(budget):
    assert P.at_budget(MODEL, budget).mean_keep_rate <= budget + 1e-9


def test_chapter_work_follows_the_build_sizes(monkeypatch):
    before = {r["chapter"]: r["samples"] for r in P.chapter_work(MODEL, WORK) if r["part"] == "analysis"}
    monkeypatch.setitem(SIZES, "rank_questions", (600, 32))
    after = {r["chapter"]: r["samples"] for r in P.chapter_work(MODEL, WORK) if r["part"] == "analysis"}
    assert after["3 Rank consistency"] == 2 * before["3 Rank consistency"]
    hours = P.chapter_hours(MODEL, GPU, WORK)
    assert all(h["hours"] > 0 for h in hours) and {h["chapter"][0] for h in hours} == set("2345678")
