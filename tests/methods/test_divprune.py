"""DivPrune: the greedy max-min selection against a plain numpy version of the paper's rule, on
constructed features and through the engine on tiny LLaVA (the features the decoder receives)."""
import numpy as np
import pytest
import torch

import vtr.methods as M
from vtr.methods import divprune as D

from .helpers import check_vision_at_layer0, run_stats


def numpy_max_min(x: np.ndarray, k: int) -> list[int]:
    """The paper's greedy Max-Min Diversity rule, written directly: cosine distances, the token
    farthest from its nearest neighbour first, then the token farthest from the chosen set."""
    x = x.astype(np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = 1.0 - unit @ unit.T
    n = len(x)
    nearest = [min(dist[i, j] for j in range(n) if j != i) for i in range(n)]
    chosen = [int(np.argmax(nearest))]
    while len(chosen) < k:
        best, best_d = None, -np.inf
        for j in range(n):
            if j in chosen:
                continue
            d = min(dist[c, j] for c in chosen)
            if d > best_d:
                best, best_d = j, d
        chosen.append(best)
    return sorted(chosen)


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_greedy_equals_plain_numpy(k):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, 12, 6, generator=g)
    keep = D.max_min_select(x, k)
    for b in range(3):
        assert keep[b].nonzero().flatten().tolist() == numpy_max_min(x[b].numpy(), k)


def test_duplicates_are_dropped_first():
    """Tokens 0-3 are one direction repeated: only one of them survives a cut to 3 of 6."""
    e = torch.eye(3)
    x = torch.stack([e[0], e[0] * 2, e[0] * 3, e[0], e[1], e[2]])[None]
    kept = D.max_min_select(x, 3)[0].nonzero().flatten().tolist()
    assert kept[1:] == [4, 5] and kept[0] in (0, 1, 2, 3)


def test_exactly_k_even_when_all_are_duplicates():
    x = torch.ones(1, 5, 4)
    assert D.max_min_select(x, 3).sum().item() == 3


@pytest.mark.parametrize("budget", [0.25, 0.5])
def test_engine_selection_equals_plain_numpy_and_keep_rate(llava, budget):
    model, inp, info = llava
    pol = M.get("divprune")(info, budget)
    seen = {}
    reduce = pol.reduce

    def spy(view, k):
        seen["out"] = reduce(view, k)
        return seen["out"]
    pol.reduce = spy
    _, stats = run_stats(model, inp, pol)
    k, B = round(budget * info.n_vision), inp["input_ids"].shape[0]
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=inp["pixel_values"], vision_feature_layer=-1,
                                               vision_feature_select_strategy="default").pooler_output
    _, keep = seen["out"]
    for b in range(B):
        assert keep[b].nonzero().flatten().tolist() == numpy_max_min(feats[b].numpy(), k)
    check_vision_at_layer0(stats, inp, info.n_vision, [k] * B)
    assert info.cost(pol.plan, "keep") == pytest.approx(k / info.n_vision)


def test_default_keeps_a_tenth():
    assert M.get("divprune")(M.ModelInfo(32, 576, 8, None)).plan.keep[0] == 58
