"""SparseVLM: paper schedules, budget scaling, text raters and rater-scored top-k."""
import pytest
import torch

from vtr.engine import LayerView
from vtr.methods import get
from vtr.methods import sparsevlm
from vtr.methods.base import MethodOptionError
from vtr.plan import Plan, PlanError

from .helpers import BIG, one_token_per_layer, run, setup, spy


@pytest.mark.parametrize("setting,counts", [(192, (300, 200, 110)), (128, (303, 110, 36)),
                                            (64, (66, 30, 17))])
def test_paper_schedules(setting, counts):
    plan = sparsevlm.plan_for(BIG, setting=setting)
    a, b, c = counts
    assert plan.keep == (576,) * 2 + (a,) * 4 + (b,) * 9 + (c,) * 17
    assert sparsevlm.default_layers(32) == (2, 6, 15)
    assert sparsevlm.default_layers(4) == (1, 2, 3)
    # the paper's "N tokens" is the mean count over layers, roughly
    assert abs(plan.mean_keep_rate * 576 - setting) < 0.1 * setting


@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.1, 0.25, 0.5, 0.8])
def test_budget_met_and_close(llava, kind, budget):
    for info in (BIG, llava[2]):
        layers = sparsevlm.default_layers(info.n_layers)
        floor = sparsevlm.plan_from_counts(info.n_layers, info.n_vision, layers, (0, 0, 0))
        if info.cost(floor, kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                sparsevlm.plan_for(info, budget, kind)
            continue
        plan = sparsevlm.plan_for(info, budget, kind)
        cost = info.cost(plan, kind)
        assert plan.n_layers == info.n_layers and plan.n_vision == info.n_vision
        assert cost <= budget + 1e-9
        assert budget - cost <= one_token_per_layer(info, kind) + 1e-9
        assert get("sparsevlm")(info, budget, kind).plan == plan
    assert sparsevlm.plan_for(BIG, 1.0) == Plan.full(32, 576)


def test_recycle_not_implemented():
    with pytest.raises(MethodOptionError, match="recycl"):
        get("sparsevlm")(BIG, recycle=True)


def _fake_view(mass_rows, text_rows=(3, 4, 5), T=6, vision=(1, 2)):
    """One sample; per-head attention whose mass on the vision tokens is mass_rows[q] for text row q."""
    vis = torch.zeros(1, T, dtype=torch.bool)
    vis[0, list(vision)] = True
    tq = torch.zeros(1, T, dtype=torch.bool)
    tq[0, list(text_rows)] = True
    Q = max(1, len(text_rows))
    probs = torch.zeros(1, 2, Q, T)
    for q, m in enumerate(mass_rows):
        probs[0, :, q, vision[0]] = m          # all the vision mass on the first vision token
        probs[0, :, q, 0] = 1 - m
    rows = torch.tensor([list(text_rows) or [0]])
    row_valid = torch.tensor([[bool(text_rows)] * Q])
    vindex = torch.where(vis, vis.long().cumsum(1) - 1, -1)
    return LayerView(2, torch.zeros(1, T, 4), vis, torch.ones(1, T, dtype=torch.bool), vindex, tq,
                     lambda q, h, s: None, lambda q, s: (probs, rows, row_valid))


def test_raters_rule_on_synthetic_attention():
    assert sparsevlm.raters(_fake_view([0.1, 0.5, 0.6]))[0].nonzero().flatten().tolist() == [4, 5]
    assert sparsevlm.raters(_fake_view([0.3, 0.3, 0.3]))[0].nonzero().flatten().tolist() == [3, 4, 5]
    assert sparsevlm.raters(_fake_view([], text_rows=()))[0].nonzero().flatten().tolist() == [5]


def _check_raters_and_topk(policy):
    def check(layer, view, keep):
        probs, rows, row_valid = view.attention(view.text_query)
        got_layer, got = policy.log[-1]
        assert got_layer == layer
        for b in range(keep.shape[0]):
            vis = (view.vision[b] & view.valid[b]).nonzero().flatten()
            text = [int(r) for r, ok in zip(rows[b], row_valid[b]) if ok]
            assert text == view.text_query[b].nonzero().flatten().tolist()
            mass = [float(probs[b, :, i][:, vis].mean(0).sum()) for i in range(len(text))]
            mean = sum(mass) / len(mass)
            expected = [t for t, m in zip(text, mass) if m > mean]
            assert 0 < len(expected) < len(text)
            assert got[b].nonzero().flatten().tolist() == expected
        score = view.score(got)
        for b in range(keep.shape[0]):
            vis = (view.vision[b] & view.valid[b]).nonzero().flatten()
            s, kb = score[b, vis], keep[b, vis]
            if 0 < int(kb.sum()) < len(vis):
                assert s[kb].min() > s[~kb].max()
        return layer, [int(keep[b][view.vision[b] & view.valid[b]].sum()) for b in range(keep.shape[0])]
    return check


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_raters_are_above_mean_text_rows_and_top_k_follows_them(arch):
    model, inp, info = setup(arch)
    policy = get("sparsevlm")(info)
    log = spy(policy, _check_raters_and_topk(policy))
    run(model, inp, policy)
    B = inp["input_ids"].shape[0]
    assert [layer for layer, _ in log] == list(sparsevlm.default_layers(info.n_layers))
    assert [k for _, k in log] == [[policy.plan.keep[layer]] * B for layer, _ in log]
