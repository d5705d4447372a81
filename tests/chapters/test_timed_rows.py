"""A policy's prefill timing is made once per build and model: the methods and field tables' row
groups share the row of any policy with the same plan and selection rule (`runs.timed_rows`)."""
import json

from vtr import timing
from vtr.chapters import runs
from vtr.engine import Policy
from vtr.experiments import store
from vtr.plan import Plan
from vtr.engine.policy import PlanPolicy


def _plans(runner):
    n_layers = runner.model.config.get_text_config().num_hidden_layers
    half = Plan.drop_at(n_layers, runner.n_vision, 2, runner.n_vision // 2)
    none = Plan.drop_at(n_layers, runner.n_vision, 2, 0)  # keeps no vision token: no rule can matter
    return half, none


def test_a_policy_timed_once_is_shown_again_not_timed_again(smoke_testbed, monkeypatch):
    runner, test = smoke_testbed
    inputs = runner.inputs(test.samples[:2], test)
    half, none = _plans(runner)
    timed = []
    real = timing.prefill_policies

    def counting(model, inputs, policies, **kw):
        timed.append(sorted(policies))
        return real(model, inputs, policies, **kw)
    monkeypatch.setattr(timing, "prefill_policies", counting)

    first = runs.timed_rows(runner, inputs, {"a": PlanPolicy(half), "b": PlanPolicy(none, query="text_mean"),
                                             "c": PlanPolicy(none)}, "testbed", "keep 0.5")
    # "c" has "b"'s plan and keeps nothing, so its rule cannot matter: timed once, in the same group
    assert timed == [["a", "b"]]
    assert [r["name"] for r in first] == ["a", "b", "c"]
    assert first[2]["timed_as"] == "b (keep 0.5)"
    assert {k: v for k, v in first[2].items() if k not in ("name", "timed_as")} == \
        {k: v for k, v in first[1].items() if k != "name"}

    # a later group: only the policy not timed before runs, the others show their first timing
    later = runs.timed_rows(runner, inputs, {"a2": PlanPolicy(half), "d": PlanPolicy(half, query="text_mean"),
                                             "full": Policy()}, "testbed", "matched 0.5")
    assert timed[1:] == [["d", "full"]]
    assert later[0]["timed_as"] == "a (keep 0.5)" and later[0]["speedup"] == first[0]["speedup"]
    assert "timed_as" not in later[1]

    # kept in the results folder: a resumed build (a new process) shares them too
    saved = [json.loads(line) for line in store.store_path("prefill_rows").read_text().splitlines()]
    assert [s["row"]["name"] for s in saved] == ["a", "b", "d", "full"]
    assert runs.timed_rows(runner, inputs, {"e": PlanPolicy(half)}, "testbed", "x")[0]["timed_as"] == \
        "a (keep 0.5)"
    assert len(timed) == 2
    # another model's (or batch's) timing is never shown for this one
    runs.timed_rows(runner, inputs, {"a": PlanPolicy(half)}, "testbed-deep", "keep 0.5")
    assert timed[2:] == [["a"]]
