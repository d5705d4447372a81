"""DART: the kept tokens against a direct version of its rule (key-norm pivots from an unpatched
forward, then the tokens least cosine-similar to each pivot), the quotas, and the keep rate."""
import numpy as np
import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import vtr.methods as M
from vtr import tiny
from vtr.methods import dart

from .helpers import kept_indices, one_token_per_layer, run_stats, spy


def rotated_keys(model, inp, K):
    """(hidden states of an unpatched forward, layer K-1's keys with HF's own rotary embedding)."""
    lm = model.model.language_model
    with torch.no_grad():
        hs = model(**inp, output_hidden_states=True).hidden_states
        layer = lm.layers[K - 1]
        x = layer.input_layernorm(hs[K - 1])
        B, T, _ = x.shape
        keys = layer.self_attn.k_proj(x).view(B, T, -1, layer.self_attn.head_dim).transpose(1, 2)
        cos, sin = lm.rotary_emb(x, inp["position_ids"])
        _, keys = apply_rotary_pos_emb(keys, keys, cos, sin)
    return hs, keys


def test_the_views_previous_keys_are_the_layers_rotated_keys(llava):
    model, inp, info = llava
    pol = M.get("dart")(info, K=2, R=0.5)
    log = spy(pol, lambda layer, view, keep: view.keys("previous").clone())
    run_stats(model, inp, pol)
    _, keys = rotated_keys(model, inp, 2)
    valid = inp["attention_mask"].bool()[:, None, :, None].expand_as(keys)
    torch.testing.assert_close(log[0][valid], keys[valid])


def reference(model, inp, K, k, pivot_image, pivot_text):
    """Per sample, the original vision indices DART keeps, computed from an unpatched forward:
    L1 norms of layer K-1's rotated keys pick the pivots, then each pivot in turn takes its share of
    the tokens whose hidden states (entering layer K) are least cosine-similar to its own."""
    hs, keys = rotated_keys(model, inp, K)
    norms = keys.abs().sum((1, 3)).numpy()
    B, T = norms.shape
    out = []
    for b in range(B):
        ids, mask = inp["input_ids"][b], inp["attention_mask"][b].bool()
        image = [int(p) for p in (ids == tiny.IMAGE_TOKEN).nonzero().flatten()]
        text = [p for p in range(image[0] + 1, T) if mask[p] and ids[p] != tiny.IMAGE_TOKEN]
        img_piv = sorted(image, key=lambda p: (-norms[b, p], p))[:min(pivot_image, k)]
        txt_piv = sorted(text, key=lambda p: (-norms[b, p], p))[:pivot_text]
        h = hs[K][b].double().numpy()
        h = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)  # padding rows are zero
        kept, pivots = list(img_piv), img_piv + txt_piv
        rest, n = k - len(kept), len(pivots)
        cands = [p for p in image if p not in kept]
        for j, pivot in enumerate(pivots):
            share = rest // n + (1 if j < rest % n else 0)
            ranked = sorted(cands, key=lambda p: (float(h[p] @ h[pivot]), p))[:share]
            kept += ranked
            cands = [p for p in cands if p not in ranked]
        out.append(sorted(image.index(p) for p in kept))
    return out


@pytest.mark.parametrize("K,R,pivot_image,pivot_text", [(1, 0.75, 4, 4), (2, 0.5, 4, 4), (1, 0.5, 2, 1),
                                                        (2, 0.25, 0, 3), (1, 0.75, 6, 0)])
def test_kept_tokens_equal_the_direct_rule(llava, K, R, pivot_image, pivot_text):
    model, inp, info = llava
    pol = M.get("dart")(info, K=K, R=R, pivot_image=pivot_image, pivot_text=pivot_text)
    log = spy(pol, kept_indices)
    run_stats(model, inp, pol)
    k = round((1 - R) * info.n_vision)
    assert log == [(K, reference(model, inp, K, k, pivot_image, pivot_text))]
    assert all(len(s) == k for s in log[0][1])


def test_quotas_share_out_exactly():
    assert dart.quotas(10, 4) == [3, 3, 2, 2]
    assert sum(dart.quotas(124, 8)) == 124


def test_near_duplicates_of_a_pivot_go():
    """Token 0 is the pivot (largest key norm); tokens 1 and 2 point its way, 3 and 4 elsewhere."""
    hidden = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.98, 0.15], [0.0, 1.0], [-1.0, 0.2]])
    norms = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0])
    kept = dart.dart_select(hidden, norms, torch.arange(5), torch.tensor([], dtype=torch.long), 3, 1, 0)
    assert kept.tolist() == [0, 3, 4]


@pytest.mark.parametrize("budget", [0.25, 0.5, 0.75])
def test_keep_rate_meets_the_budget(llava, budget):
    model, inp, info = llava
    pol = M.get("dart")(info, budget)
    _, stats = run_stats(model, inp, pol)
    cost = info.cost(pol.plan, "keep")
    assert cost <= budget + 1e-9 and budget - cost <= one_token_per_layer(info, "keep") + 1e-9
    assert stats["vision_counts"].tolist() == [list(pol.plan.keep)] * inp["input_ids"].shape[0]


def test_testbed_sized_plan():
    info = M.ModelInfo(8, 144, 8, None)
    plan = M.get("dart")(info, 0.25).plan
    assert plan.keep == (144,) + (20,) * 7 and abs(plan.mean_keep_rate - 0.25) < 0.02
    assert M.get("dart")(M.ModelInfo(32, 576, 8, None)).plan.keep[2:] == (128,) * 30

