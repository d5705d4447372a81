"""Checks several methods share: one test per check, parametrized over the methods it applies to."""
import pytest
import torch

import vtr.methods as M
from vtr.engine import EncoderView, UnsupportedInput
from vtr.methods import cls_knee, fastv, visionzip
from vtr.plan import Plan, PlanError

from .helpers import BIG, check_vision_at_layer0, no_knee, one_token_per_layer, run, run_stats, setup

ENCODER_SIDE = ("visionzip", "prumerge", "prumerge_plus", "tome", "cls_knee", "divprune", "pool",
                "downsample")


@pytest.mark.parametrize("name", ["random", "uniform"])
@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.1, 0.3, 0.6, 0.9])
def test_fastv_schedule_budget_met_and_close(llava, name, kind, budget):
    """The FastV-schedule ablations: FastV's plan at a budget, one pruning step."""
    for info in (BIG, llava[2]):
        if info.cost(Plan.drop_at(info.n_layers, info.n_vision, 0, 0), kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                M.get(name)(info, budget, kind)
            continue
        plan = M.get(name)(info, budget, kind).plan
        assert plan == fastv.plan_for(info, budget, kind)
        assert plan.n_layers == info.n_layers and len(set(plan.keep)) <= 2   # one pruning step
        cost = info.cost(plan, kind)
        assert cost <= budget + 1e-9
        assert budget - cost <= one_token_per_layer(info, kind) + 1e-9
    assert M.get(name)(BIG).plan == Plan.drop_at(32, 576, 2, 288)


@pytest.mark.parametrize("name,budget", [("visionzip", b) for b in (0.25, 0.5, 0.75)]
                         + [(name, b) for name in ("prumerge", "prumerge_plus") for b in (0.25, 0.5)]
                         + [("tome", b) for b in (0.125, 0.3, 0.5, 0.8)]
                         + [("divprune", b) for b in (0.25, 0.5, 0.75)]
                         + [(name, 0.25) for name in ("pool", "downsample")])
def test_encoder_budget_met_through_engine(llava, name, budget):
    """round(budget N) tokens of every sample reach the decoder; the plan says so."""
    model, inp, info = llava
    n = info.n_vision
    pol = M.get(name)(info, budget)
    _, stats = run_stats(model, inp, pol)
    k, B = round(budget * n), inp["input_ids"].shape[0]
    check_vision_at_layer0(stats, inp, n, [k] * B)
    assert pol.last_counts.tolist() == [k] * B
    assert info.cost(pol.plan, "keep") == pytest.approx(k / n)


@pytest.mark.parametrize("name,args", [("pdrop", ()), ("sparsevlm", ()), ("visionzip", (0.5,)),
                                       ("prumerge", (0.5,)), ("prumerge_plus", (0.5,)), ("tome", (0.3,)),
                                       ("cls_knee", ()),
                                       ("dart", (0.5,)), ("divprune", (0.3,)), ("pool", (0.5,)),
                                       ("downsample", (0.5,))])
def test_deterministic(llava, name, args):
    model, inp, info = llava
    assert torch.equal(run(model, inp, M.get(name)(info, *args)), run(model, inp, M.get(name)(info, *args)))


@pytest.mark.parametrize("name", ENCODER_SIDE)
def test_keep_all_equals_unpatched(llava, name):
    model, inp, info = llava
    with torch.no_grad():
        ref = model(**inp).logits
    kw = {"stage2_ratio": 0.0, "detector": no_knee} if name == "cls_knee" else {}
    assert torch.equal(run(model, inp, M.get(name)(info, 1.0, **kw)), ref)


@pytest.fixture(scope="module", params=["internvl", "qwen2_vl"])
def other_tower(request):
    """A tiny model whose vision tower the engine cannot reduce at the encoder."""
    return setup(request.param, batch=2)


@pytest.mark.parametrize("name,args", [("visionzip", (0.5,)), ("prumerge", ()), ("prumerge_plus", ()),
                                       ("tome", (0.5,)), ("cls_knee", ()), ("divprune", (0.5,)),
                                       ("pool", (0.25,)), ("downsample", (0.25,))])
def test_encoder_side_unsupported_on_other_towers(other_tower, name, args):
    model, inp, info = other_tower
    with pytest.raises(UnsupportedInput):
        run(model, inp, M.get(name)(info, *args))


def _no_cls_view():
    g = torch.Generator().manual_seed(0)
    return EncoderView(torch.randn(1, 16, 8, generator=g), torch.randn(1, 16, 6, generator=g), None,
                       torch.randn(1, 2, 16, 4, generator=g), None, (4, 4))


CLS_POLICIES = {"visionzip": lambda: visionzip.VisionZipPolicy(8, 16),
                "prumerge": lambda: M.get("prumerge")(M.ModelInfo(4, 16, 8, None), 0.5),
                "prumerge_plus": lambda: M.get("prumerge_plus")(M.ModelInfo(4, 16, 8, None), 0.5),
                **{f"cls_knee-{score}": (lambda score=score: cls_knee.ClsKneePolicy(None, 16, score=score))
                   for score in cls_knee.SCORES}}


@pytest.mark.parametrize("policy", CLS_POLICIES)
def test_cls_methods_unsupported_without_cls(policy):
    with pytest.raises(UnsupportedInput, match="CLS"):
        CLS_POLICIES[policy]().encoder_step(_no_cls_view())


def test_every_method_says_what_it_scores_from(llava):
    """`SCORED_FROM` names every registered method, and for the decoder-side ones it names the score
    source their policy uses by default."""
    assert sorted(M.SCORED_FROM) == M.names()
    info = llava[2]
    for name in ("fastv", "pdrop", "sparsevlm"):
        policy = M.get(name)(info, 0.5)
        assert M.SCORED_FROM[name].startswith(f"{policy.source} layer"), name
