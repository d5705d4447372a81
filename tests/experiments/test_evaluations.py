"""Evaluations are keyed by what decides their answers: a request whose answers another request
already decided reads that run file (and its timing) instead of running the model again."""
from __future__ import annotations

import json

from vtr.engine import PlanPolicy, Policy
from vtr.methods import fastv, random_tokens, uniform
from vtr.methods.selection import SelectionPolicy
from vtr.plan import Plan



def counting(runner, monkeypatch) -> list[int]:
    """Count the batches the model answers (a shared evaluation answers none)."""
    calls, predict = [], runner.predict
    monkeypatch.setattr(runner, "predict", lambda inputs: calls.append(1) or predict(inputs))
    return calls


def test_a_plan_where_no_layer_chooses_is_one_evaluation_for_every_rule():
    plan = Plan((144, 144, 0, 0), 144)
    ids = [p.identity() for p in (PlanPolicy(plan), PlanPolicy(plan, query="text_mean", source="previous"),
                                   random_tokens.RandomPolicy(plan, seed=3), uniform.UniformPolicy(plan))]
    assert ids[0]["select"] == "none" and all(i == ids[0] for i in ids)


def test_a_plan_that_chooses_keeps_its_rule_and_seed():
    plan = Plan((144, 72, 72, 36), 144)
    ids = [PlanPolicy(plan).identity(), PlanPolicy(plan, source="previous").identity(),
           random_tokens.RandomPolicy(plan, seed=0).identity(),
           random_tokens.RandomPolicy(plan, seed=1).identity(), uniform.UniformPolicy(plan).identity()]
    assert len({json.dumps(i, sort_keys=True) for i in ids}) == len(ids)
    assert ids[0]["plan"] == [144, 72, 72, 36]


def test_a_policy_that_does_not_declare_its_rule_is_never_shared():
    class Undeclared(SelectionPolicy):
        def select(self, layer, view, k):
            return view.keep_top(k)

    class Custom(Policy):
        pass

    assert Undeclared(Plan((144, 72, 72, 36), 144)).identity() is None
    assert Custom().identity() is None
    assert Policy().identity() == {"select": "none", "plan": None}


def test_a_second_request_for_the_same_answers_reads_the_first_run(smoke_testbed, monkeypatch):
    from vtr.experiments import evaluations

    runner, test = smoke_testbed
    n_layers = runner.model.config.get_text_config().num_hidden_layers
    K = fastv.default_layer(n_layers)
    calls = counting(runner, monkeypatch)
    first = evaluations.eval_method(runner, test, "fastv", None, experiment="one", progress=False,
                                    measure_speed=False, K=K, R=1.0)
    answered = len(calls)
    assert answered > 0
    # VTW withdrawing every vision token at the same layer is the same plan: no model call at all
    again = evaluations.eval_method(runner, test, "vtw", None, experiment="two", progress=False,
                                    measure_speed=False, K=K)
    assert len(calls) == answered
    assert again["run_file"] == first["run_file"] and again["overall"] == first["overall"]
    assert (again["experiment"], again["method"]) == ("two", "vtw")
    # a plan that chooses among tokens is its own evaluation
    evaluations.eval_method(runner, test, "fastv", None, experiment="one", progress=False,
                            measure_speed=False)
    assert len(calls) > answered


def test_a_shared_evaluation_is_timed_once(smoke_testbed, monkeypatch):
    from vtr.experiments import evaluations

    runner, test = smoke_testbed
    timed = []
    real = evaluations.prefill_speedup
    monkeypatch.setattr(evaluations, "prefill_speedup", lambda *a, **k: timed.append(1) or real(*a, **k))
    one = evaluations.eval_method(runner, test, "full", None, experiment="a", progress=False,
                                  speed_batch=2, speed_repeats=1)
    two = evaluations.eval_method(runner, test, "full", None, experiment="b", progress=False,
                                  speed_batch=2, speed_repeats=1)
    assert len(timed) == 1 and one["speedup"] == two["speedup"]
    evaluations.eval_method(runner, test, "full", None, experiment="c", progress=False,
                            speed_batch=3, speed_repeats=1)
    assert len(timed) == 2  # another batch is another measurement
