"""Average pooling of the projected grid: the grid rule, the pooled features against torch's own
pooling and an explicit window loop, and the keep rate through the engine on tiny LLaVA."""
import math

import pytest
import torch
import torch.nn.functional as F

import vtr.methods as M
from vtr.engine import EncoderView, UnsupportedInput
from vtr.methods import pool as P

from .helpers import check_vision_at_layer0, run_stats


@pytest.mark.parametrize("count,grid", [(36, (6, 6)), (72, (8, 9)), (18, (4, 4)), (20, (4, 5)), (1, (1, 1)),
                                        (143, (11, 12)), (144, (12, 12)), (500, (12, 12))])
def test_grid_is_the_largest_near_square_not_above_the_count(count, grid):
    assert P.grid_for(count, 12, 12) == grid
    r, c = grid
    assert r * c <= count and c - r in (0, 1)
    assert count - r * c <= math.isqrt(count) or (r, c) == (12, 12)
    # no near-square grid between it and the count
    assert not any(a * b <= count and a * b > r * c and b - a in (0, 1) and b <= 12
                   for a in range(1, 13) for b in (a, a + 1))


def test_slots_hold_the_cell_centres():
    odd = range(1, 12, 2)  # 2 x 2 cells: the centre falls in each cell's second row and column
    assert P.grid_slots(6, 6, 12, 12).tolist() == [a * 12 + b for a in odd for b in odd]
    assert P.grid_slots(1, 1, 4, 4).tolist() == [2 * 4 + 2]


def _view(rows, cols, d=5, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = rows * cols
    return EncoderView(torch.randn(B, N, d, generator=g), torch.randn(B, N, 3, generator=g), None, None, None,
                       (rows, cols))


def test_even_grid_equals_avg_pool2d():
    view = _view(12, 12)
    feats, keep = P.PoolPolicy(36, 144).encoder_step(view)
    grid = view.features.transpose(1, 2).reshape(2, 5, 12, 12)
    expected = F.avg_pool2d(grid, kernel_size=2).reshape(2, 5, 36).transpose(1, 2)
    slots = P.grid_slots(6, 6, 12, 12)
    assert keep.sum(1).tolist() == [36, 36] and keep[:, slots].all()
    torch.testing.assert_close(feats[:, slots], expected)


def test_uneven_grid_equals_explicit_windows():
    """5 x 5 tokens to the 2 x 3 grid of a count of 6: window i spans rows floor(i R / r) to
    ceil((i + 1) R / r) - 1 (overlapping where r does not divide R)."""
    view = _view(5, 5)
    feats, keep = P.PoolPolicy(6, 25).encoder_step(view)
    x = view.features.view(2, 5, 5, -1)
    expected = []
    for i in range(2):
        for j in range(3):
            r0, r1 = (i * 5) // 2, -((-(i + 1) * 5) // 2)
            c0, c1 = (j * 5) // 3, -((-(j + 1) * 5) // 3)
            expected.append(x[:, r0:r1, c0:c1].mean((1, 2)))
    slots = P.grid_slots(2, 3, 5, 5)
    assert keep.sum(1).tolist() == [6, 6] and keep[:, slots].all()
    torch.testing.assert_close(feats[:, slots], torch.stack(expected, 1))


def test_needs_one_grid():
    view = _view(4, 4)
    view.grid = None
    with pytest.raises(UnsupportedInput, match="patch grid"):
        P.PoolPolicy(4, 16).encoder_step(view)


@pytest.mark.parametrize("budget,count", [(0.25, 4), (0.5, 6), (0.1, 2), (1.0, 16)])
def test_keep_rate_through_the_engine(llava, budget, count):
    """The tiny 4 x 4 grid: 0.25 -> 2 x 2; 0.5 (8 tokens) -> 2 x 3; 0.1 (2 tokens) -> 1 x 2."""
    model, inp, info = llava
    pol = M.get("pool")(info, budget)
    _, stats = run_stats(model, inp, pol)
    B = inp["input_ids"].shape[0]
    check_vision_at_layer0(stats, inp, info.n_vision, [count] * B)
    assert pol.last_counts.tolist() == [count] * B
    assert info.cost(pol.plan, "keep") == pytest.approx(count / info.n_vision)


def test_testbed_sized_budget():
    info = M.ModelInfo(8, 144, 8, None)
    assert M.get("pool")(info, 0.25).plan.keep == (36,) * 8
    assert M.get("pool")(info).plan.keep == (36,) * 8
