"""VisionZip: the pure steps on constructed tensors, then through the engine on tiny LLaVA."""
import pytest
import torch

import vtr.methods as M
from vtr.engine import EncoderView
from vtr.methods import visionzip as VZ
from vtr.plan import PlanError


# ---------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("total,expected", [(64, (54, 10)), (128, (108, 20)), (192, (162, 30)), (1, (1, 0))])
def test_split_counts_paper_settings(total, expected):
    assert VZ.split_counts(total) == expected


def test_dominant_tokens_are_topk_of_cls_attention():
    attn = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05], [0.4, 0.0, 0.2, 0.2, 0.2]])
    dom = VZ.dominant_mask(attn, 2)
    # tie: lower index
    assert dom.tolist() == [[False, True, False, True, False], [True, False, True, False, False]]


def test_contextual_merge_groups_by_key_similarity():
    # 6 remaining tokens, 2 targets: evenly spaced at remaining ranks 0 and 3 (step 6 // 2 = 3)
    N, d = 7, 3
    feats = torch.arange(N * d, dtype=torch.float32).view(1, N, d)
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    metric = torch.stack([e0, e0, e1, e0, e1, e1, e1])[None]  # token 0 is dominant below
    remaining = torch.tensor([[False, True, True, True, True, True, True]])
    out, targets = VZ.contextual_merge(feats, metric, remaining, 2)
    assert targets[0].nonzero().flatten().tolist() == [1, 4]
    # target 1 (key e0) gets token 3; target 4 (key e1) gets tokens 2, 5, 6
    torch.testing.assert_close(out[0, 1], (feats[0, 1] + feats[0, 3]) / 2)
    torch.testing.assert_close(out[0, 4], feats[0, [4, 2, 5, 6]].mean(0))
    assert torch.equal(out[0, [0, 2, 3, 5, 6]], feats[0, [0, 2, 3, 5, 6]])
    out2, _ = VZ.contextual_merge(feats, metric, remaining, 2, merge="target_plus_mean")
    torch.testing.assert_close(out2[0, 4], feats[0, 4] + feats[0, [2, 5, 6]].mean(0))


def _view(B=2, N=16, d=8, H=2, Dh=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats, patches = torch.randn(B, N, d, generator=g), torch.randn(B, N, 6, generator=g)
    keys = torch.randn(B, H, N, Dh, generator=g)
    attn = torch.softmax(torch.randn(B, N, generator=g), -1)
    return EncoderView(feats, patches, torch.randn(B, 6, generator=g), keys, lambda: attn, (4, 4)), attn


def test_policy_keeps_dominant_plus_contextual_per_sample():
    view, attn = _view()
    pol = VZ.VisionZipPolicy(8, 16)          # 8 kept = 7 dominant + 1 contextual
    feats, keep = pol.encoder_step(view)
    assert keep.sum(1).tolist() == [8, 8]
    top7 = VZ.dominant_mask(attn, 7)
    assert bool((keep & top7).eq(top7).all())
    assert feats.shape == view.features.shape


def test_budget_validation():
    info = M.ModelInfo(4, 16, 8, None)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            M.get("visionzip")(info, bad)
    with pytest.raises(PlanError):
        M.get("visionzip")(info, 0.01)  # rounds to no token at all
    with pytest.raises(ValueError):
        M.get("visionzip")(info, 0.5, kind="tokens")


# ---------------------------------------------------------------------- through the engine
def test_flops_budget_fits(llava):
    info = llava[2]
    pol = M.get("visionzip")(info, 0.6, kind="flops")
    assert info.cost(pol.plan, "flops") <= 0.6 + 1e-9
