"""PyramidDrop: stage plan, budget solving by bisection, and top-k by last-token attention."""
import pytest
import torch

from vtr.engine import PlanPolicy
from vtr.methods import get
from vtr.methods import pdrop
from vtr.plan import Plan, PlanError

from .helpers import BIG, one_token_per_layer, run, setup, spy


def test_default_plan_is_the_paper_pyramid():
    plan = pdrop.plan_for(BIG)
    assert plan.keep == (576,) * 8 + (288,) * 8 + (144,) * 8 + (72,) * 8
    assert pdrop.default_layers(4) == (1, 2, 3)
    assert pdrop.plan_for(BIG, lam=0.25).keep[8:17] == (144,) * 8 + (36,)


@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.3, 0.45, 0.6, 0.9])
def test_budget_met_and_close(llava, kind, budget):
    for info in (BIG, llava[2]):
        floor = pdrop.plan_from_lambda(info.n_layers, info.n_vision, pdrop.default_layers(info.n_layers), 0.0)
        if info.cost(floor, kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                pdrop.solve_lambda(info, budget, kind)
            continue
        lam, plan = pdrop.solve_lambda(info, budget, kind)
        cost = info.cost(plan, kind)
        assert plan.n_layers == info.n_layers and plan.n_vision == info.n_vision
        assert cost <= budget + 1e-9
        assert budget - cost <= one_token_per_layer(info, kind) + 1e-9
        assert plan == pdrop.plan_from_lambda(info.n_layers, info.n_vision,
                                              pdrop.default_layers(info.n_layers), lam)
        assert get("pdrop")(info, budget, kind).plan == plan


def test_budget_full_and_infeasible():
    assert pdrop.plan_for(BIG, 1.0) == Plan.full(32, 576)
    with pytest.raises(PlanError, match="0.2"):
        pdrop.plan_for(BIG, 0.2)          # the first stage alone costs 8/32
    assert BIG.cost(pdrop.plan_for(BIG, 0.2, layers=(2, 4, 6)), "keep") <= 0.2


def _check_top_last(layer, view, keep):
    """Kept vision tokens are exactly the k highest last-token scores (computed here, independently)."""
    score = view.score("last")
    kept = []
    for b in range(keep.shape[0]):
        present = (view.vision[b] & view.valid[b]).nonzero().flatten()
        s = score[b, present]
        k = int(keep[b, present].sum())
        expected = present[torch.argsort(s, descending=True)[:k]]
        got = present[keep[b, present]]
        assert sorted(got.tolist()) == sorted(expected.tolist())
        if 0 < k < len(present):
            assert s[keep[b, present]].min() > s[~keep[b, present]].max()
        kept.append(k)
    return layer, kept


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_keeps_top_last_token_attention_at_each_boundary(arch):
    model, inp, info = setup(arch)
    policy = get("pdrop")(info)
    log = spy(policy, _check_top_last)
    out = run(model, inp, policy)
    B = inp["input_ids"].shape[0]
    expected = [(b, [policy.plan.keep[b]] * B) for b in pdrop.default_layers(info.n_layers)]
    assert log == expected
    assert torch.equal(out, run(model, inp, PlanPolicy(policy.plan, query="last")))
