"""ToMe at the encoder output: bipartite soft matching on constructed tensors, then through the engine."""
import pytest
import torch

import vtr.methods as M
from vtr.methods import tome as T

from .helpers import run


# ---------------------------------------------------------------------- pure functions
def _orthogonal_metric(N):
    return torch.eye(N)[None].clone()


def test_most_similar_pair_is_merged_first_into_b_slot():
    N = 6                                         # A = 0, 2, 4; B = 1, 3, 5
    metric = _orthogonal_metric(N)
    metric[0, 2] = metric[0, 5] * 1.0 + 0.01 * metric[0, 2]   # A token 2 ~ B token 5
    metric[0, 4] = metric[0, 1] + 0.5 * metric[0, 4]          # A token 4 ~ B token 1, less similar
    x = torch.arange(N * 2, dtype=torch.float32).view(1, N, 2)
    size = torch.ones(1, N)
    xn, mn, sn, pos = T.bipartite_round(x, metric, size, r=1)
    assert pos[0].tolist() == [0, 1, 3, 4, 5]     # token 2 merged away
    torch.testing.assert_close(xn[0, 4], (x[0, 2] + x[0, 5]) / 2)   # in B token 5's slot
    assert sn[0].tolist() == [1, 1, 1, 1, 2]
    xn, _, sn, pos = T.bipartite_round(x, metric, size, r=2)
    assert pos[0].tolist() == [0, 1, 3, 5]        # then 4 -> 1
    torch.testing.assert_close(xn[0, 1], (x[0, 4] + x[0, 1]) / 2)


def test_size_weighted_average():
    x = torch.tensor([[[0.0], [3.0]]])
    metric = torch.ones(1, 2, 1)
    size = torch.tensor([[3.0, 1.0]])              # A token already holds 3 tokens
    xn, _, sn, pos = T.bipartite_round(x, metric, size, r=1)
    assert pos[0].tolist() == [1] and sn[0].tolist() == [4.0]
    torch.testing.assert_close(xn[0, 0], torch.tensor([0.75]))


def test_repeated_rounds_reach_target_and_conserve_mass():
    g = torch.Generator().manual_seed(0)
    B, N, d = 3, 23, 5
    x, metric = torch.randn(B, N, d, generator=g), torch.randn(B, N, 4, generator=g)
    for target in (1, 4, 11, 12, 23):
        out, keep, sizes = T.tome_merge(x, metric, target)
        assert keep.sum(1).tolist() == [target] * B
        assert torch.equal(sizes.sum(1), torch.full((B,), float(N)))
        assert bool((sizes > 0).eq(keep).all())
        # a size-weighted average of disjoint groups preserves the sum of all features
        torch.testing.assert_close((out * sizes[..., None]).sum(1), x.sum(1), atol=1e-4, rtol=1e-5)
        assert torch.equal(out[~keep], x[~keep])
    out, keep, _ = T.tome_merge(x, metric, N)
    assert torch.equal(out, x) and bool(keep.all())


def test_bipartite_round_rejects_too_large_r():
    with pytest.raises(ValueError):
        T.bipartite_round(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2), torch.ones(1, 5), 3)


def test_budget_validation():
    info = M.ModelInfo(4, 16, 8, None)
    for bad in (0.0, 2.0, -0.5):
        with pytest.raises(ValueError):
            M.get("tome")(info, bad)


# ---------------------------------------------------------------------- through the engine
@pytest.mark.parametrize("budget", [0.125, 0.3, 0.5, 0.8])
def test_merged_sizes_account_for_every_token(llava, budget):
    model, inp, info = llava
    pol = M.get("tome")(info, budget)
    run(model, inp, pol)
    assert pol.last_sizes.sum(1).tolist() == [float(info.n_vision)] * inp["input_ids"].shape[0]


def test_default_is_one_full_round(llava):
    model, inp, info = llava
    n = info.n_vision
    pol = M.get("tome")(info)
    run(model, inp, pol)
    assert pol.last_counts.tolist() == [n - n // 2] * inp["input_ids"].shape[0]
