"""The rank-consistency chapter's measures, on synthetic rank_consistency results."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from vtr.chapters.pages import rank_consistency as rank


def _tau_matrix(scores: np.ndarray) -> np.ndarray:
    """Kendall tau of every pair of layers for one question's (layers, tokens) scores."""
    L = len(scores)
    return np.array([[kendalltau(scores[i], scores[j]).statistic for j in range(L)] for i in range(L)])


def _rc(L: int, seed: int, n: int = 5, tokens: int = 12) -> dict:
    """A rank_consistency-shaped result from random per-question scores."""
    rng = np.random.default_rng(seed)
    out = {"n": n}
    for q in rank.QUERIES:
        scores = rng.normal(size=(n, L, tokens)) + np.linspace(0, 2, tokens)  # some shared order
        taus = np.stack([_tau_matrix(s) for s in scores])
        k = tokens // 4
        top = np.argsort(-scores, axis=2)[:, :, :k]
        nested = [float(np.mean([len(set(top[i, layer + 1]) & set(top[i, layer])) / k for i in range(n)]))
                  for layer in range(L - 1)]
        out[q] = {"tau_mean": taus.mean(0).tolist(), "overlap_k": k, "nested": nested,
                  "per_sample_adjacent": [taus[:, layer, layer + 1].tolist() for layer in range(L - 1)]}
    return out


def _pairs_mean(t, pairs):
    return np.mean([t[a][b] for a, b in pairs])


def test_depth_row_against_a_direct_computation():
    rc = _rc(8, 0)
    t = np.array(rc["last"]["tau_mean"])
    row = rank.depth_row(rc, 8)
    later = [(i, j) for i in range(1, 8) for j in range(i + 1, 8)]
    assert row["tau (last)"] == pytest.approx(_pairs_mean(t, later))
    assert row["tau (text mean)"] == pytest.approx(_pairs_mean(np.array(rc["text_mean"]["tau_mean"]), later))
    assert row["tau layer 0 vs others (last)"] == pytest.approx(np.mean(t[0, 1:]))
    adjacent = [(layer, layer + 1) for layer in range(1, 7)]
    assert row["tau adjacent layers (last)"] == pytest.approx(_pairs_mean(t, adjacent))
    assert row["tau at matching depth (last)"] == pytest.approx(row["tau (last)"])  # same depth: every layer
    assert row["nested (last)"] == pytest.approx(np.mean(rc["last"]["nested"][1:]))
    assert (row["decoder layers"], row["questions"], row["top-k"]) == (8, 5, 3)


def test_matching_depth_reads_every_other_layer_of_a_doubled_model():
    rc = _rc(8, 1)
    t = np.array(rc["last"]["tau_mean"])
    even = [(2 * i, 2 * j) for i in range(1, 4) for j in range(i + 1, 4)]
    assert rank.matching_depth_tau(rc, 4) == pytest.approx(_pairs_mean(t, even))
    assert np.isnan(rank.matching_depth_tau(rc, 3))  # 8 layers are not a multiple of 3


def test_copied_pairs_split_the_adjacent_pairs_of_a_grown_model():
    L = 16
    within, across = rank.within_copies(L), rank.across_copies(L)
    assert all(a % 2 == 0 and b == a + 1 for a, b in within)
    assert all(a % 2 == 1 and b == a + 1 for a, b in across)
    assert sorted(within + across) == rank.adjacent(L)


@pytest.mark.parametrize("a, b, fmt, said", [
    (0.301, 0.304, "{:.2f}", "the same as"), (0.31, 0.30, "{:.2f}", "higher than"),
    (0.12, 0.5, "{:.2f}", "lower than"), (0.504, 0.496, "{:.0%}", "the same as"),
    (float("nan"), 0.5, "{:.2f}", "not comparable with")])
def test_compared_at_the_printed_precision(a, b, fmt, said):
    assert rank.compared(a, b, fmt) == said


def test_adjacent_by_depth_positions_a_copy_where_its_original_sits():
    rc, deep = _rc(4, 2), _rc(8, 3)
    curves = rank.adjacent_by_depth(rc, deep)
    assert [c["label"].split(":")[0] for c in curves] == ["4-layer", "8-layer", "8-layer", "8-layer"]
    two_apart = curves[3]
    # layers 2i, 2i+2 of the doubled model sit where layers i, i+1 of the original do
    assert two_apart["x"] == pytest.approx(curves[0]["x"])
    td = np.array(deep["last"]["tau_mean"])
    assert two_apart["tau"] == pytest.approx([td[2, 4], td[4, 6]])


def test_adjacent_spread_has_every_question_of_every_pair():
    rc = _rc(5, 4, n=3)
    spread = rank.adjacent_spread(rc)
    assert len(spread) == 2 * 4 * 3
    last = spread[(spread["query"] == "last") & (spread["layers"] == "1-2")]["tau"].tolist()
    assert last == rc["last"]["per_sample_adjacent"][1]


def _saved(taus):
    return {"n": 3, "split": "val", "checkpoints": {
        f"variant {i}": {"commit": f"c{i}", "steps": 100 * (i + 1), "heldout": 0.5 + 0.1 * i, "last": t,
                         "text_mean": t / 2, "last_layer0": -t, "last_layer0_extra": 0}
        for i, t in enumerate(taus)}}


def test_checkpoint_facts_read_the_saved_table():
    table = rank.checkpoint_table(_saved([0.05, 0.2, 0.1]))
    assert list(table.index) == ["variant 0", "variant 1", "variant 2"]
    f = rank.checkpoint_facts(table)
    assert (f["tau-ckpt-n"], f["tau-ckpt-max"]) == (3, 0.2)
    assert (f["tau-ckpt-acc-min"], f["tau-ckpt-acc-max"]) == (0.5, pytest.approx(0.7))
    assert "has not come to share" in f["tau-ckpt-reading"]
    assert "partial" in rank.checkpoint_facts(rank.checkpoint_table(_saved([0.05, 0.45])))["tau-ckpt-reading"]


def test_facts_compare_the_first_model_with_the_deep_one():
    rcs = {"small": _rc(4, 5), "big": _rc(8, 6)}
    verdicts = {"rank-verdict": "a", "nested-verdict": "b",
                "rank-verdict-deep": "c", "nested-verdict-deep": "d"}
    f = rank.facts(rcs, _saved([0.1]), "small", "big", verdicts)
    small, big = rank.depth_row(rcs["small"], 4), rank.depth_row(rcs["big"], 4)
    assert f["tau-last"] == pytest.approx(small["tau (last)"])
    assert f["tau-last-deep"] == pytest.approx(big["tau (last)"])
    assert f["tau-match-deep"] == pytest.approx(big["tau at matching depth (last)"])
    td = np.array(rcs["big"]["last"]["tau_mean"])
    assert f["tau-within-deep"] == pytest.approx(_pairs_mean(td, [(2, 3), (4, 5), (6, 7)]))
    assert f["tau-across-deep"] == pytest.approx(_pairs_mean(td, [(1, 2), (3, 4), (5, 6)]))
    assert f["depth-tau-cmp"] == rank.compared(big["tau (last)"], small["tau (last)"])
    assert f["rank-n"] == 5 and f["overlap-k-deep"] == 3
    assert {k: f[k] for k in verdicts} == verdicts
    assert all(isinstance(v, (int, float, str)) and not isinstance(v, np.generic) for v in f.values())


def _profile(shares, top10, sink=0.01, n=20):
    return {"n": n, "layers": [{"layer": i, "vision_share": s, "top_0.01": t / 2, "top_0.1": t,
                                "uniform_0.01": 1 / 144, "uniform_0.1": 14 / 144, "sink_attention": sink,
                                "sink_norm_ratio": 1.0, "sink_kinds": {"first": 0, "vision": 3, "text": 1},
                                "max_norm_ratio": 2.0}
                               for i, (s, t) in enumerate(zip(shares, top10))]}


def test_attention_profile_reads_the_deeper_half_against_the_thresholds():
    label = {"a": 4, "b": 8}
    llava_like = {"a": _profile([0.5, 0.4, 0.1, 0.05], [0.3, 0.4, 0.6, 0.7]),
                  "b": _profile([0.5] + [0.1] * 7, [0.6] * 8)}
    f = rank.profile_facts(llava_like, label)
    assert f["ap-share-deep"] == pytest.approx(0.075) and f["ap-top10-deep"] == pytest.approx(0.65)
    assert "little, as FastV describes" in f["ap-reading"] and "No token acts as a sink" in f["ap-reading"]
    assert f["ap-depends"] == rank.DEPENDS_LIKE
    late = {"a": _profile([0.1, 0.8, 0.8, 0.9], [0.2] * 4, sink=0.2), "b": llava_like["b"]}
    f = rank.profile_facts(late, label)
    assert "not little" in f["ap-reading"] and "acts as a sink" in f["ap-reading"]
    assert f["ap-depends"] == rank.DEPENDS_UNLIKE
    table = rank.profile_table(late, label)
    assert table.loc[("4 layers", 1), "vision share %"] == pytest.approx(80.0)
    assert table.loc[("8 layers", 0), "sink is"] == "a vision token"
