"""Uniform selection: FastV's schedule at a budget, evenly spaced original vision indices."""
import pytest
import torch

from vtr import tiny
from vtr.engine import Policy, prune
from vtr.flops import DecoderShape
from vtr.methods import ModelInfo, fastv, get, model_info
from vtr.methods.uniform import spaced
from vtr.plan import Plan, PlanError

BIG = ModelInfo(32, 576, 64, DecoderShape(hidden=4096, intermediate=11008, n_layers=32))


def setup(arch):
    model = tiny.build(arch)
    n = tiny.n_image_tokens(model, arch)
    inp = tiny.make_inputs(model, arch)
    return model, inp, model_info(model, n, n_text=8)


def run(model, inp, policy):
    with torch.no_grad(), prune(model, policy):
        return model(**inp).logits


def one_token_per_layer(info, kind):
    if kind == "keep":
        return 1 / info.n_vision
    return 1 - info.cost(Plan(((info.n_vision - 1),) * info.n_layers, info.n_vision), kind)


class Kept(Policy):
    """Records (layer, kept original vision indices per sample) at every pruning step."""
    def __init__(self, inner):
        self.inner, self.log = inner, []

    def check_model(self, n):
        self.inner.check_model(n)

    def start(self, batch_size):
        self.inner.start(batch_size)

    def keep_before(self, layer, view):
        keep = self.inner.keep_before(layer, view)
        if keep is not None:
            vis = view.vision & view.valid
            self.log.append((layer, [sorted(view.vision_index[b][keep[b] & vis[b]].tolist())
                                     for b in range(keep.shape[0])]))
        return keep


def test_spaced_indices():
    assert spaced(16, 8) == [0, 2, 4, 6, 9, 11, 13, 15]
    assert spaced(576, 4) == [0, 192, 383, 575]
    assert spaced(5, 1) == [2] and spaced(5, 0) == [] and spaced(5, 5) == [0, 1, 2, 3, 4]
    for m in range(1, 30):
        for k in range(m + 1):
            idx = spaced(m, k)
            assert len(idx) == k and idx == sorted(set(idx)) and all(0 <= i < m for i in idx)
            if k > 1:
                ref = torch.linspace(0, m - 1, k).double()
                assert idx[0] == 0 and idx[-1] == m - 1
                assert max(abs(i - float(r)) for i, r in zip(idx, ref)) <= 0.5 + 1e-6
    with pytest.raises(ValueError):
        spaced(3, 4)


@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.1, 0.3, 0.6, 0.9])
def test_budget_met_and_close(kind, budget):
    for info in (BIG, setup("llava")[2]):
        if info.cost(Plan.drop_at(info.n_layers, info.n_vision, 0, 0), kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                get("uniform")(info, budget, kind)
            continue
        plan = get("uniform")(info, budget, kind).plan
        assert plan == fastv.plan_for(info, budget, kind)
        cost = info.cost(plan, kind)
        assert cost <= budget + 1e-9
        assert budget - cost <= one_token_per_layer(info, kind) + 1e-9


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
@pytest.mark.parametrize("budget", [None, 0.5])
def test_keeps_evenly_spaced_indices_deterministically(arch, budget):
    model, inp, info = setup(arch)
    spy = Kept(get("uniform")(info, budget))
    out = run(model, inp, spy)
    plan = spy.inner.plan
    K = next(i for i, k in enumerate(plan.keep) if k < info.n_vision)
    B = inp["input_ids"].shape[0]
    assert spy.log == [(K, [spaced(info.n_vision, plan.keep[K])] * B)]
    assert torch.equal(out, run(model, inp, get("uniform")(info, budget)))
