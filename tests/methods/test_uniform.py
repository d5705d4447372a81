"""Uniform selection: FastV's schedule at a budget, evenly spaced original vision indices."""
import pytest
import torch

from vtr.methods import get
from vtr.methods.uniform import spaced

from .helpers import kept_indices, run, setup, spy


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


@pytest.mark.parametrize("arch", ["llava", "qwen2_vl"])
@pytest.mark.parametrize("budget", [None, 0.5])
def test_keeps_evenly_spaced_indices_deterministically(arch, budget):
    model, inp, info = setup(arch)
    policy = get("uniform")(info, budget)
    log = spy(policy, kept_indices)
    out = run(model, inp, policy)
    plan = policy.plan
    K = next(i for i, k in enumerate(plan.keep) if k < info.n_vision)
    B = inp["input_ids"].shape[0]
    assert log == [(K, [spaced(info.n_vision, plan.keep[K])] * B)]
    assert torch.equal(out, run(model, inp, get("uniform")(info, budget)))
