"""ToMe at the encoder output: bipartite soft matching on constructed tensors, then through the engine."""
import pytest
import torch

import vtr.methods as M
from vtr import tiny
from vtr.engine import UnsupportedInput, prune
from vtr.methods import tome as T

ARCH = "llava"


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


@pytest.mark.parametrize("budget", [0.125, 0.3, 0.5, 0.8])
def test_budget_met_through_engine(setup, budget):
    model, inp, n, info = setup
    pol = M.get("tome")(info, budget)
    _, stats = _run(model, inp, pol)
    k, B = round(budget * n), inp["input_ids"].shape[0]
    total, per_sample = _vision_at_layer0(stats, inp, n)
    assert total == B * k
    assert per_sample in (None, [k] * B)
    assert pol.last_sizes.sum(1).tolist() == [float(n)] * B


def test_default_is_one_full_round(setup):
    model, inp, n, info = setup
    pol = M.get("tome")(info)
    _run(model, inp, pol)
    assert pol.last_counts.tolist() == [n - n // 2] * inp["input_ids"].shape[0]


def test_deterministic(setup):
    model, inp, n, info = setup
    a, _ = _run(model, inp, M.get("tome")(info, 0.3))
    b, _ = _run(model, inp, M.get("tome")(info, 0.3))
    assert torch.equal(a, b)


def test_keep_all_equals_unpatched(setup):
    model, inp, n, info = setup
    with torch.no_grad():
        ref = model(**inp).logits
    got, _ = _run(model, inp, M.get("tome")(info, 1.0))
    assert torch.equal(got, ref)


def test_internvl_unsupported():
    model = tiny.build("internvl")
    inp = tiny.make_inputs(model, "internvl", batch=2)
    with pytest.raises(UnsupportedInput):
        _run(model, inp, M.get("tome")(M.model_info(model, tiny.n_image_tokens(model, "internvl"), 8), 0.5))


def test_qwen2_vl_unsupported():
    model = tiny.build("qwen2_vl")
    inp = tiny.make_inputs(model, "qwen2_vl", batch=2)
    with pytest.raises(UnsupportedInput):
        _run(model, inp, M.get("tome")(M.model_info(model, tiny.n_image_tokens(model, "qwen2_vl"), 8), 0.5))
