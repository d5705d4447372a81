"""PruMerge and PruMerge+: IQR outliers, spatial samples, neighbour merging; then through the engine."""
import numpy as np
import pytest
import torch

import vtr.methods as M
from vtr.methods import prumerge as PM

from .helpers import check_vision_at_layer0, run_stats
NAMES = ("prumerge", "prumerge_plus")


# ---------------------------------------------------------------------- pure functions
def test_iqr_outliers_match_numpy_rule():
    row = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 30.0, 12.0, 100.0])
    out = PM.iqr_outliers(torch.stack([row, row.flip(0)]))
    q1, q3 = np.percentile(row.numpy(), [25, 75])
    expected = row.numpy() > q3 + 1.5 * (q3 - q1)
    assert out[0].tolist() == expected.tolist()
    assert out[0].nonzero().flatten().tolist() == [8, 10]   # 30 and 100; 12 is inside the fence
    assert out[1].tolist() == expected[::-1].tolist()        # per-sample rule, order-independent


def test_official_plus_samples_stride():
    N = 576
    kept = torch.zeros(1, N, dtype=torch.bool)
    kept[0, torch.arange(0, 64, 2)] = True                   # 32 outliers -> r = 1/18, step 18
    s = PM.official_plus_samples(kept)
    expected = set(range(3, N, 6)) - set(range(0, 64, 2))
    assert set(s[0].nonzero().flatten().tolist()) == expected


def test_evenly_spaced_among_free():
    free = torch.ones(2, 12, dtype=torch.bool)
    free[1, :6] = False
    s = PM.evenly_spaced(free, torch.tensor([3, 2]))
    assert s[0].nonzero().flatten().tolist() == [2, 6, 10]
    assert s[1].nonzero().flatten().tolist() == [7, 10]


def _toy():
    # token 0 is kept; tokens 1..3 pruned; token 2 has the same key as token 0
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [5.0, -1.0]]])
    metric = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [-1.0, 0.1]]])
    w = torch.tensor([[0.4, 0.1, 0.2, 0.3]])
    kept = torch.tensor([[True, False, False, False]])
    return x, metric, w, kept


def test_merge_weighted_average_with_nearest_pruned():
    x, metric, w, kept = _toy()
    out = PM.merge_neighbours(x, metric, w, kept, k=1)
    torch.testing.assert_close(out[0, 0], (0.4 * x[0, 0] + 0.2 * x[0, 2]) / 0.6)
    assert torch.equal(out[0, 1:], x[0, 1:])                 # pruned rows untouched
    out2 = PM.merge_neighbours(x, metric, w, kept, k=2)       # nearest two: token 2, then token 1
    torch.testing.assert_close(out2[0, 0], (0.4 * x[0, 0] + 0.2 * x[0, 2] + 0.1 * x[0, 1]) / 0.7)
    res = PM.merge_neighbours(x, metric, w, kept, k=1, update="residual_sum")
    torch.testing.assert_close(res[0, 0], x[0, 0] + 0.2 * x[0, 2])


def test_merge_neighbours_all_includes_kept_tokens():
    x, metric, w, kept = _toy()
    kept = kept.clone()
    kept[0, 2] = True                                         # now token 2 is kept as well
    pruned_only = PM.merge_neighbours(x, metric, w, kept, k=1)
    every = PM.merge_neighbours(x, metric, w, kept, k=1, neighbours="all")
    torch.testing.assert_close(every[0, 0], (0.4 * x[0, 0] + 0.2 * x[0, 2]) / 0.6)
    assert not torch.allclose(pruned_only[0, 0], every[0, 0])


def test_merge_without_candidates_is_identity():
    x, metric, w, _ = _toy()
    kept = torch.ones(1, 4, dtype=torch.bool)
    assert torch.equal(PM.merge_neighbours(x, metric, w, kept, k=3), x)


def test_prumerge_counts():
    g = torch.Generator().manual_seed(0)
    B, N = 3, 40
    attn = torch.rand(B, N, generator=g) * 0.1
    attn[0, [3, 7]] = 5.0
    attn[1, [1, 2, 9, 30]] = 5.0
    x, metric = torch.randn(B, N, 4, generator=g), torch.randn(B, N, 5, generator=g)
    _, keep = PM.prumerge(x, attn, metric)                    # adaptive: per-sample outlier counts
    assert keep[0].nonzero().flatten().tolist() == [3, 7]
    assert keep[1].nonzero().flatten().tolist() == [1, 2, 9, 30]
    assert int(keep[2].sum()) >= 1
    _, keep = PM.prumerge(x, attn, metric, count=10)          # budget: top-k
    assert keep.sum(1).tolist() == [10] * B
    assert bool(keep[0, [3, 7]].all())
    _, keep = PM.prumerge(x, attn, metric, count=12, plus=True)   # 3 outliers + 9 uniform samples
    assert keep.sum(1).tolist() == [12] * B
    assert bool(keep[1, [1, 2, 9]].all())
    _, keep = PM.prumerge(x, attn, metric, plus=True)          # adaptive plus adds samples
    assert int(keep[0].sum()) > 2 and bool(keep[0, [3, 7]].all())


@pytest.mark.parametrize("name", NAMES)
def test_validation(name):
    info = M.ModelInfo(4, 16, 8, None)
    for bad in (0.0, 1.01, -1):
        with pytest.raises(ValueError):
            M.get(name)(info, bad)
    with pytest.raises(ValueError):
        M.get(name)(info, 0.5, neighbours="some")
    with pytest.raises(ValueError):
        M.get(name)(info, 0.5, update="max")


# ---------------------------------------------------------------------- through the engine
@pytest.mark.parametrize("name", NAMES)
def test_adaptive_mode_counts_reach_decoder(llava, name):
    model, inp, info = llava
    n = info.n_vision
    pol = M.get(name)(info)
    _, stats = run_stats(model, inp, pol)
    check_vision_at_layer0(stats, inp, n, pol.last_counts.tolist())
    assert pol.plan is None
