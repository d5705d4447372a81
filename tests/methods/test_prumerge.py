"""PruMerge and PruMerge+: IQR outliers, spatial samples, neighbour merging; then through the engine."""
import numpy as np
import pytest
import torch

import vtr.methods as M
from vtr import tiny
from vtr.engine import EncoderView, UnsupportedInput, prune
from vtr.methods import prumerge as PM

ARCH = "llava"
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


def test_no_cls_token_is_unsupported():
    g = torch.Generator().manual_seed(0)
    view = EncoderView(torch.randn(1, 16, 8, generator=g), torch.randn(1, 16, 6, generator=g), None,
                       torch.randn(1, 2, 16, 4, generator=g), None, (4, 4))
    for name in NAMES:
        with pytest.raises(UnsupportedInput, match="CLS"):
            M.get(name)(M.ModelInfo(4, 16, 8, None), 0.5).encoder_step(view)


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
@pytest.fixture(scope="module")
def setup():
    model = tiny.build(ARCH)
    inp = tiny.make_inputs(model, ARCH)
    n = tiny.n_image_tokens(model, ARCH)
    return model, inp, n, M.model_info(model, n, 8)


def _run(model, inp, policy):
    with torch.no_grad(), prune(model, policy) as session:
        logits = model(**inp).logits
    return logits, session.last_stats


def _vision_at_layer0(stats, inp, n):
    text = int(inp["attention_mask"].sum()) - n * inp["attention_mask"].shape[0]
    total = stats["tokens_per_layer"][0] - text
    per_sample = stats["vision_counts"][:, 0].tolist() if "vision_counts" in stats else None
    return total, per_sample


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("budget", [0.25, 0.5])
def test_budget_met_through_engine(setup, name, budget):
    model, inp, n, info = setup
    pol = M.get(name)(info, budget)
    _, stats = _run(model, inp, pol)
    k, B = round(budget * n), inp["input_ids"].shape[0]
    total, per_sample = _vision_at_layer0(stats, inp, n)
    assert total == B * k
    assert per_sample in (None, [k] * B)


@pytest.mark.parametrize("name", NAMES)
def test_adaptive_mode_counts_reach_decoder(setup, name):
    model, inp, n, info = setup
    pol = M.get(name)(info)
    _, stats = _run(model, inp, pol)
    total, per_sample = _vision_at_layer0(stats, inp, n)
    assert total == int(pol.last_counts.sum())
    assert per_sample in (None, pol.last_counts.tolist())
    assert pol.plan is None


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(setup, name):
    model, inp, n, info = setup
    a, _ = _run(model, inp, M.get(name)(info, 0.5))
    b, _ = _run(model, inp, M.get(name)(info, 0.5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_keep_all_equals_unpatched(setup, name):
    model, inp, n, info = setup
    with torch.no_grad():
        ref = model(**inp).logits
    got, _ = _run(model, inp, M.get(name)(info, 1.0))
    assert torch.equal(got, ref)


def test_internvl_unsupported():
    model = tiny.build("internvl")
    inp = tiny.make_inputs(model, "internvl", batch=2)
    with pytest.raises(UnsupportedInput):
        _run(model, inp, M.get("prumerge")(M.model_info(model, tiny.n_image_tokens(model, "internvl"), 8)))


def test_qwen2_vl_unsupported():
    model = tiny.build("qwen2_vl")
    inp = tiny.make_inputs(model, "qwen2_vl", batch=2)
    with pytest.raises(UnsupportedInput):
        _run(model, inp, M.get("prumerge_plus")(M.model_info(model, tiny.n_image_tokens(model, "qwen2_vl"), 8)))
