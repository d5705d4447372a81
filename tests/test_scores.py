"""`vtr.scores` against torch's own attention: scaled_dot_product_attention with the identity as
values returns the attention probabilities themselves, for plain and grouped-query attention."""
import pytest
import torch
import torch.nn.functional as F

from vtr import scores as S


def _torch_probs(q, k, allowed, scale, gqa=False):
    """softmax(q k^T scale) as torch computes attention: SDPA's output with V = identity."""
    B, H, Q, _ = q.shape
    T = k.shape[2]
    v = torch.eye(T, dtype=q.dtype).expand(B, k.shape[1], T, T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None], scale=scale, enable_gqa=gqa)


def _inputs(seed, B=2, H=4, Hk=4, Q=3, T=7, D=8):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Q, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, Hk, T, D, generator=g, dtype=torch.float64)
    allowed = torch.rand(B, Q, T, generator=g) < 0.7
    allowed[..., 0] = True  # every row may attend somewhere
    return q, k, allowed


@pytest.mark.parametrize("seed", range(3))
def test_attention_probs_are_torchs_attention_weights(seed):
    q, k, allowed = _inputs(seed)
    scale = q.shape[-1] ** -0.5
    got = S.attention_probs(q, k, allowed, scale)
    torch.testing.assert_close(got, _torch_probs(q, k, allowed, scale).float(), rtol=1e-5, atol=1e-6)
    assert (got[~allowed[:, None].expand_as(got)] == 0).all()


def test_grouped_query_attention_shares_keys_as_torch_does():
    q, k, allowed = _inputs(5, H=6, Hk=2)
    got = S.attention_probs(q, k, allowed, 0.3)
    torch.testing.assert_close(got, _torch_probs(q, k, allowed, 0.3, gqa=True).float(), rtol=1e-5, atol=1e-6)


def test_a_row_that_may_attend_nowhere_scores_zero_not_nan():
    q, k, allowed = _inputs(1)
    allowed[0, 1] = False
    got = S.attention_probs(q, k, allowed, 1.0)
    assert not got.isnan().any() and (got[0, :, 1] == 0).all()
    assert torch.allclose(got[0, :, 0].sum(-1), torch.ones(q.shape[1]))


def test_head_and_query_reductions():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 4, 3, 5, generator=g)
    torch.testing.assert_close(S.reduce_heads(probs, "mean"), probs.sum(1) / 4)
    by_head = torch.stack([probs[:, h] for h in range(4)])
    assert torch.equal(S.reduce_heads(probs, "max"), by_head.max(0).values)
    with pytest.raises(ValueError, match="head reduction"):
        S.reduce_heads(probs, "median")
    rows = probs[:, 0]
    valid = torch.tensor([[True, False, True], [False, False, False]])
    got = S.reduce_queries(rows, valid)
    torch.testing.assert_close(got[0], (rows[0, 0] + rows[0, 2]) / 2)
    assert torch.equal(got[1], torch.zeros(5))  # no valid query row: zero, not a division by zero


def _reference_topk(s, valid, k):
    """The k highest valid scores, ties to the lower index, by sorting (index, score) pairs."""
    order = sorted((i for i in range(len(s)) if valid[i]), key=lambda i: (-float(s[i]), i))[:k]
    return [i in order for i in range(len(s))]


@pytest.mark.parametrize("seed", range(5))
def test_topk_mask_keeps_the_k_highest_valid_scores_ties_to_the_lower_index(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (3, 12), generator=g).float()  # many ties
    valid = torch.rand(3, 12, generator=g) < 0.8
    k = torch.stack([torch.randint(0, int(n) + 1, (), generator=g) for n in valid.sum(1)])
    got = S.topk_mask(scores, valid, k)
    for b in range(3):
        assert got[b].tolist() == _reference_topk(scores[b], valid[b], int(k[b]))


def test_topk_mask_agrees_with_torch_topk_on_distinct_scores():
    g = torch.Generator().manual_seed(7)
    scores = torch.randn(4, 20, generator=g)
    k = torch.tensor([0, 3, 10, 20])
    got = S.topk_mask(scores, torch.ones_like(scores, dtype=torch.bool), k)
    for b in range(4):
        top = torch.topk(scores[b], int(k[b])).indices
        assert set(got[b].nonzero().flatten().tolist()) == set(top.tolist())


def test_topk_mask_refuses_more_than_the_valid_tokens_naming_the_sample():
    valid = torch.tensor([[True, True, True], [True, False, False]])
    with pytest.raises(ValueError, match="sample 1: keep 2 is outside 0..1"):
        S.topk_mask(torch.zeros(2, 3), valid, torch.tensor([3, 2]))


def test_cls_attention_is_torchs_attention_of_cls_over_the_patches():
    g = torch.Generator().manual_seed(2)
    q_cls, k = torch.randn(2, 3, 8, generator=g), torch.randn(2, 3, 10, 8, generator=g)
    allowed = torch.ones(2, 1, 10, dtype=torch.bool)
    per_head = _torch_probs(q_cls[:, :, None], k, allowed, 0.25)[:, :, 0]  # (B, H, N)
    torch.testing.assert_close(S.cls_attention(q_cls, k, 0.25), per_head.mean(1))
    torch.testing.assert_close(S.cls_attention(q_cls, k, 0.25, heads="max"), per_head.amax(1))


def test_leaving_out_the_cls_key_keeps_the_ranking_of_a_head():
    g = torch.Generator().manual_seed(3)
    q_cls, k_cls, k = torch.randn(4, 1, 8, generator=g), torch.randn(4, 1, 1, 8, generator=g), \
        torch.randn(4, 1, 10, 8, generator=g)
    everything = torch.ones(4, 1, 11, dtype=torch.bool)
    with_cls = _torch_probs(q_cls[:, :, None], torch.cat([k_cls, k], 2), everything, 0.5)[:, 0, 0, 1:]
    assert torch.equal(with_cls.argsort(-1), S.cls_attention(q_cls, k, 0.5).argsort(-1))


def test_cls_similarity_is_the_cosine_of_each_patch_with_cls():
    g = torch.Generator().manual_seed(4)
    cls, patches = torch.randn(2, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    want = torch.tensor([[float(p @ c / (p.norm() * c.norm())) for p in ps] for c, ps in zip(cls, patches)])
    torch.testing.assert_close(S.cls_similarity(cls, patches), want)
