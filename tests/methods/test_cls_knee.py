"""CLS-knee: knee detectors on constructed curves, stage-2 relevance, then both stages through the engine."""
import math

import numpy as np
import pytest
import torch

import vtr.methods as M
from vtr.methods import cls_knee as K

from .helpers import check_vision_at_layer0, masks, no_knee, run_stats, spy


# ---------------------------------------------------------------------- knee detectors
def corner_curve(N=60, c=12):
    """Steep linear drop from 1 to 0.1 over ranks 0..c, then a slow linear drop to 0."""
    i = torch.arange(N, dtype=torch.float64)
    return torch.where(i <= c, 1 - 0.9 * i / c, 0.1 - 0.1 * (i - c) / (N - 1 - c))


@pytest.mark.parametrize("c", [5, 12, 30])
def test_piecewise_linear_corner(c):
    curve = corner_curve(c=c)
    assert int(K.kneedle(curve)) == c
    assert int(K.max_second_difference(curve)) == c


def test_exponential_decay_kneedle():
    # y = exp(-i / tau) on N = 101 points: the Kneedle difference 1 - exp(-a x) - x (a = 100 / tau)
    # peaks at x = ln(a) / a, i.e. i = tau * ln(100 / tau) = 23.03 for tau = 10
    tau, N = 10.0, 101
    curve = torch.exp(-torch.arange(N, dtype=torch.float64) / tau)
    assert int(K.kneedle(curve)) == round(tau * math.log((N - 1) / tau))


def test_cumulative_mass():
    tau, N = 10.0, 101
    curve = torch.exp(-torch.arange(N, dtype=torch.float64) / tau)
    w = (curve - curve.min()).tolist()
    expected = next(m for m in range(1, N + 1) if sum(w[:m]) >= 0.9 * sum(w))
    assert int(K.cumulative_mass(curve, 0.9)) == expected
    step = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    assert int(K.cumulative_mass(step, 0.9)) == 3
    assert int(K.cumulative_mass(step, 0.3)) == 1


def test_detectors_batched_numpy_and_flat():
    curves = torch.stack([corner_curve(c=5), corner_curve(c=20), torch.full((60,), 0.3, dtype=torch.float64)])
    assert K.kneedle(curves).tolist() == [5, 20, 60]           # flat curve: no knee, keep all
    assert K.max_second_difference(curves).tolist() == [5, 20, 60]
    assert K.cumulative_mass(curves)[2] == 60
    for det in K.DETECTORS.values():                           # one numpy row, as the book calls them
        assert int(det(corner_curve(c=9).numpy().astype(np.float32))) > 0


def test_knee_keep_per_sample_counts_min_keep_and_cap():
    g = torch.Generator().manual_seed(0)
    B, N = 3, 60
    perms = [torch.randperm(N, generator=g) for _ in range(B)]
    curves = [corner_curve(N, c) for c in (4, 15, 0)]
    scores = torch.stack([cv[torch.argsort(p)] for cv, p in zip(curves, perms)]).float()  # shuffled
    keep, counts = K.knee_keep(scores, K.kneedle)
    assert counts.tolist() == [4, 15, 1]                       # corner at 0 -> min_keep = 1
    for b in range(B):
        kept = set(keep[b].nonzero().flatten().tolist())
        top = set(torch.argsort(scores[b], descending=True, stable=True)[: counts[b]].tolist())
        assert kept == top
    _, capped = K.knee_keep(scores, K.kneedle, cap=10)
    assert capped.tolist() == [4, 10, 1]
    _, atleast = K.knee_keep(scores, K.kneedle, min_keep=6)
    assert atleast.tolist() == [6, 15, 6]


# ---------------------------------------------------------------------- stage 2
def test_text_relevance_averages_rows_that_see_the_position():
    # one head; T = 4; question rows at positions 2 and 3
    probs = torch.tensor([[[[0.5, 0.2, 0.3, 0.0], [0.1, 0.1, 0.4, 0.4]]]])
    rows, row_valid = torch.tensor([[2, 3]]), torch.tensor([[True, True]])
    rel = K.text_relevance(probs, rows, row_valid)
    torch.testing.assert_close(rel, torch.tensor([[0.3, 0.15, 0.35, 0.4]]))   # position 3: only row 3 sees it
    keep = K.relevance_keep(rel, torch.ones(1, 4, dtype=torch.bool), 1.0)   # mean 0.3
    assert keep.tolist() == [[True, False, True, True]]
    cand = torch.tensor([[True, False, True, True]])
    assert K.relevance_keep(rel, cand, 1.0)[0, 1]               # non-candidates always stay


def test_validation():
    info = M.ModelInfo(4, 16, 8, None)
    for bad in (0.0, 1.2):
        with pytest.raises(ValueError):
            M.get("cls_knee")(info, bad)
    with pytest.raises(ValueError):
        M.get("cls_knee")(info, detector="elbow")
    with pytest.raises(ValueError):
        M.get("cls_knee")(info, score="entropy")
    assert M.get("cls_knee")(info).stage2_layer == 1          # round(4 / 4)
    assert M.get("cls_knee")(info, stage2=0).stage2_layer is None


# ---------------------------------------------------------------------- through the engine
@pytest.mark.parametrize("detector", list(K.DETECTORS))
def test_stage1_counts_per_sample_reach_decoder(llava, detector):
    model, inp, info = llava
    n = info.n_vision
    pol = M.get("cls_knee")(info, detector=detector, stage2=False)
    _, stats = run_stats(model, inp, pol)
    check_vision_at_layer0(stats, inp, n, pol.last_counts.tolist())
    assert bool((pol.last_counts >= 1).all()) and bool((pol.last_counts <= n).all())


def test_counts_differ_per_image(llava):
    model, inp, info = llava
    pol = M.get("cls_knee")(info, stage2=False)
    run_stats(model, inp, pol)
    assert len(set(pol.last_counts.tolist())) > 1


@pytest.mark.parametrize("budget", [0.125, 0.5])
def test_budget_caps_stage1(llava, budget):
    model, inp, info = llava
    n = info.n_vision
    free = M.get("cls_knee")(info, stage2=False)
    run_stats(model, inp, free)
    pol = M.get("cls_knee")(info, budget, stage2=False)
    _, stats = run_stats(model, inp, pol)
    expected = free.last_counts.clamp(max=round(budget * n))
    assert pol.last_counts.tolist() == expected.tolist()
    check_vision_at_layer0(stats, inp, n, expected.tolist())


def test_stage2_drops_visual_and_text_tokens_at_its_layer(llava):
    model, inp, info = llava
    pol = M.get("cls_knee")(info, stage2_ratio=1.0, detector=no_knee)
    log = spy(pol, masks)
    _, stats = run_stats(model, inp, pol)
    (layer, keep, vision, valid), = log
    assert layer == pol.stage2_layer == 1
    dropped = valid & ~keep
    assert bool((dropped & ~vision).any()), "stage 2 should drop some text tokens"
    assert bool((dropped & vision).any()), "stage 2 should drop some visual tokens"
    counts = stats["token_counts"] if "token_counts" in stats else None
    if counts is not None:
        before = counts[:, layer - 1]
        assert torch.equal(counts[:, layer], before - pol.last_stage2)
    else:
        assert stats["tokens_per_layer"][layer] < stats["tokens_per_layer"][layer - 1]
    last = torch.where(valid, torch.arange(valid.shape[1]), -1).amax(1)
    assert bool(keep[torch.arange(len(last)), last].all())      # the token producing the output stays


def test_stage2_layer_out_of_range(llava):
    model, inp, info = llava
    with pytest.raises(ValueError, match="stage2_layer"):
        run_stats(model, inp, M.get("cls_knee")(info, stage2_layer=info.n_layers))
