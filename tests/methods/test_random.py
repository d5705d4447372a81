"""Random selection: FastV's schedule at a budget, seeded per-sample subsets."""
import pytest
import torch

from vtr.methods import fastv, get
from vtr.plan import PlanError

from .helpers import kept_indices, run, setup, spy


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
def test_seeded_reproducible_per_sample_and_differs_across_seeds(arch):
    model, inp, info = setup(arch)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        policy = get("random")(info, seed=seed)
        log = spy(policy, kept_indices)
        runs[name] = (run(model, inp, policy), log)
    assert torch.equal(runs["a"][0], runs["b"][0]) and runs["a"][1] == runs["b"][1]
    assert runs["a"][1] != runs["c"][1]
    assert not torch.equal(runs["a"][0], runs["c"][0])
    K, kept = runs["a"][1][0]
    k = get("random")(info).plan.keep[-1]
    assert K == fastv.default_layer(info.n_layers) and len(runs["a"][1]) == 1
    assert all(len(s) == k for s in kept)
    assert len({tuple(s) for s in kept}) == len(kept)       # every sample its own subset


def test_stream_and_reset(llava):
    model, inp, info = llava
    policy = get("random")(info, seed=3)
    log = spy(policy, kept_indices)
    run(model, inp, policy)
    run(model, inp, policy)
    assert log[0] != log[1]                               # the next prefill draws new subsets
    policy.reset()
    run(model, inp, policy)
    assert log[2] == log[0]                               # reset() replays


def test_infeasible_budget_message(llava):
    info = llava[2]
    with pytest.raises(PlanError, match=r"random.*0\.2"):
        get("random")(info, 0.2, "flops")
