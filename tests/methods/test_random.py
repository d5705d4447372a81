"""Random selection: FastV's schedule at a budget, seeded per-sample subsets."""
import pytest
import torch

from vtr import tiny
from vtr.engine import Policy, prune
from vtr.flops import DecoderShape
from vtr.methods import ModelInfo, fastv, get, model_info
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


@pytest.mark.parametrize("kind", ["keep", "flops"])
@pytest.mark.parametrize("budget", [0.1, 0.3, 0.6, 0.9])
def test_budget_met_and_close(kind, budget):
    for info in (BIG, setup("llava")[2]):
        if info.cost(Plan.drop_at(info.n_layers, info.n_vision, 0, 0), kind) > budget:
            with pytest.raises(PlanError, match=str(budget)):
                get("random")(info, budget, kind)
            continue
        plan = get("random")(info, budget, kind).plan
        assert plan == fastv.plan_for(info, budget, kind)
        assert plan.n_layers == info.n_layers and len(set(plan.keep)) <= 2   # one pruning step
        cost = info.cost(plan, kind)
        assert cost <= budget + 1e-9
        assert budget - cost <= one_token_per_layer(info, kind) + 1e-9
    assert get("random")(BIG).plan == Plan.drop_at(32, 576, 2, 288)


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_seeded_reproducible_per_sample_and_differs_across_seeds(arch):
    model, inp, info = setup(arch)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        spy = Kept(get("random")(info, seed=seed))
        runs[name] = (run(model, inp, spy), spy.log)
    assert torch.equal(runs["a"][0], runs["b"][0]) and runs["a"][1] == runs["b"][1]
    assert runs["a"][1] != runs["c"][1]
    assert not torch.equal(runs["a"][0], runs["c"][0])
    K, kept = runs["a"][1][0]
    k = get("random")(info).plan.keep[-1]
    assert K == fastv.default_layer(info.n_layers) and len(runs["a"][1]) == 1
    assert all(len(s) == k for s in kept)
    assert len({tuple(s) for s in kept}) == len(kept)       # every sample its own subset


def test_stream_and_reset():
    model, inp, info = setup("llava")
    policy = get("random")(info, seed=3)
    spy = Kept(policy)
    run(model, inp, spy)
    run(model, inp, spy)
    assert spy.log[0] != spy.log[1]                       # the next prefill draws new subsets
    policy.reset()
    run(model, inp, spy)
    assert spy.log[2] == spy.log[0]                       # reset() replays


def test_infeasible_budget_message():
    model, inp, info = setup("llava")
    with pytest.raises(PlanError, match=r"random.*0\.2"):
        get("random")(info, 0.2, "flops")
