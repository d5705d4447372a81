"""VTW: withdraw every vision token before layer K; K given, by the KL rule, or by a budget."""
import pytest
import torch

from vtr.engine import PlanPolicy
from vtr.flops import DecoderShape
from vtr.methods import ModelInfo, get
from vtr.methods import vtw
from vtr.methods.base import MethodOptionError
from vtr.plan import Plan, PlanError

from .helpers import BIG, run, setup, spy, vision_counts


def test_plans():
    assert vtw.plan_for(BIG) == Plan.drop_at(32, 576, 15, 0)
    assert vtw.plan_for(BIG, K=7).keep == (576,) * 7 + (0,) * 25
    assert vtw.default_layer(4) == 2
    with pytest.raises(MethodOptionError, match="K=33"):
        vtw.plan_for(BIG, K=33)


@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.05, 0.3, 0.5, 0.77, 1.0])
def test_budget_gives_largest_k(llava, kind, budget):
    for info in (BIG, llava[2]):
        L, n = info.n_layers, info.n_vision
        if info.cost(Plan.drop_at(L, n, 0, 0), kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                vtw.plan_for(info, budget, kind)
            continue
        plan = get("vtw")(info, budget, kind).plan
        K = sum(1 for k in plan.keep if k == n)
        assert plan == Plan.drop_at(L, n, K, 0)
        assert info.cost(plan, kind) <= budget + 1e-9
        assert K == L or info.cost(Plan.drop_at(L, n, K + 1, 0), kind) > budget   # the largest such K
        if kind == "keep":
            assert budget - plan.mean_keep_rate < 1 / L     # the family's step is one layer
        # a given K caps the budget's K
        assert vtw.plan_for(info, budget, kind, K=min(K, 1)) == Plan.drop_at(L, n, min(K, 1), 0)


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_equals_plan_keeping_nothing_after_k(arch):
    model, inp, info = setup(arch)
    L, n = info.n_layers, info.n_vision
    for K in (1, 3):
        policy = get("vtw")(info, K=K)
        log = spy(policy, vision_counts, every_layer=True)
        got = run(model, inp, policy)
        ref = run(model, inp, PlanPolicy(Plan.drop_at(L, n, K, 0)))
        assert torch.equal(got, ref)
        B = inp["input_ids"].shape[0]
        assert log == [[n] * B] * K + [[0] * B] * (L - K)
        assert torch.equal(got, run(model, inp, get("vtw")(info, K=K)))     # deterministic
    assert not torch.allclose(run(model, inp, get("vtw")(info, K=1))[:, -1],
                              run(model, inp, get("vtw")(info, K=L))[:, -1])


def _synthetic(kls_wanted, n=5, V=7):
    """logits_fn whose KL(full || withdrawn at K) is monotone in a per-K temperature; records calls."""
    g = torch.Generator().manual_seed(0)
    full = torch.randn(n, V, generator=g)
    noise = torch.randn(n, V, generator=g)
    calls = []

    def fn(K):
        calls.append(K)
        return torch.log_softmax(full + kls_wanted[K] * noise, -1)
    return fn, torch.log_softmax(full, -1), calls


def test_choose_k_first_under_eta():
    scales = [3.0, 2.0, 1.0, 0.05, 0.5, 0.01, 0.0, 0.0]    # K = 0..6, then K = L = 7 (full)
    fn, full, calls = _synthetic(scales)
    kl = [vtw.kl_full_vs(full, fn(k)) for k in range(7)]
    calls.clear()
    eta = (kl[3] + min(kl[:3] + kl[4:5])) / 2                # K = 3, 5, 6 pass, not 4
    assert kl[3] < eta and all(x >= eta for x in kl[:3]) and kl[4] >= eta
    trace = []
    assert vtw.choose_k(fn, eta, n_layers=7, full=full, trace=trace) == 3
    assert calls == [0, 1, 2, 3] and [k for k, _ in trace] == [0, 1, 2, 3]
    assert trace[-1][1] == pytest.approx(kl[3])
    # full defaults to logits_fn(n_layers); nothing passing -> n_layers
    calls.clear()
    assert vtw.choose_k(fn, 1e-12, n_layers=5) == 5
    assert calls[0] == 5
    assert get("vtw")(ModelInfo(7, 16, 4, DecoderShape(64, 128, 7)), logits_fn=fn, eta=eta,
                      full=full).plan == Plan.drop_at(7, 16, 3, 0)
    with pytest.raises(ValueError):
        vtw.choose_k(fn, 0.0, n_layers=7)
    with pytest.raises(ValueError):
        get("vtw")(BIG, K=3, logits_fn=fn, eta=eta)


def test_choose_k_on_a_model(llava):
    """Wired to a tiny model: the chosen K's plan really has KL < eta, all earlier ones do not."""
    model, inp, info = llava
    L, n = info.n_layers, info.n_vision

    def logits_fn(K):
        return torch.log_softmax(run(model, inp, PlanPolicy(Plan.drop_at(L, n, K, 0)))[:, -1], -1)

    trace = []
    eta = 1e-3
    K = vtw.choose_k(logits_fn, eta, n_layers=L, trace=trace)
    assert [k for k, _ in trace] == list(range(min(K + 1, L)))
    assert all(kl >= eta for _, kl in trace[:-1])
    assert K == L or trace[-1][1] < eta
