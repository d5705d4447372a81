"""The rank-consistency chapter: what its page glues, tabulates and plots, from `runs.rank_consistency`
results (one per model: layer x layer Kendall tau, top-k overlap, nestedness) and the shipped
8-layer checkpoints' saved taus (`vtr.testbed.history`).

Layers are numbered from 0; the paper's "layers other than the first" are our layers >= 1. The
depth comparison reads the profile's first model against its last (on the testbed: the 8-layer
testbed against the 16-layer one, grown from it by block expansion, so that its layers 2i and 2i+1
began as copies of the 8-layer model's layer i).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...testbed.history import mean_tau_without_first
from ..runs import tau_excluding_first as tau

PAPER_TAU = 0.7   # the paper's threshold for a consistent ranking
PARTLY_TAU = 0.4  # the claims rule's threshold for "partly" (`claims.rank_claim`)
QUERIES = ("last", "text_mean")
NOT_SHARED = ("on this testbed, a better-trained decoder has not come to share its ranking of vision tokens "
              "across layers")
PARTLY_SHARED = ("some of these checkpoints share their ranking across layers to a degree the claims rule "
                 "calls partial")


def first_layer_tau(rc: dict, query: str = "last") -> float:
    """Mean Kendall tau of layer 0 with every later layer."""
    return float(np.mean(np.array(rc[query]["tau_mean"])[0, 1:]))


def nested(rc: dict) -> float:
    """Mean share of layer l+1's top-k (last token) inside layer l's, over layers l >= 1."""
    return float(np.mean(rc["last"]["nested"][1:]))


def pair_mean(t: np.ndarray, pairs) -> float:
    return float(np.mean([t[a, b] for a, b in pairs]))


def adjacent(L: int) -> list[tuple[int, int]]:
    """Adjacent layer pairs from layer 1 on."""
    return [(layer, layer + 1) for layer in range(1, L - 1)]


def within_copies(L: int) -> list[tuple[int, int]]:
    """Layers 2i, 2i+1 (i >= 1): two copies of one layer of the model it was grown from."""
    return [(layer, layer + 1) for layer in range(2, L - 1, 2)]


def across_copies(L: int) -> list[tuple[int, int]]:
    """Layers 2i+1, 2i+2: the identity copy and the next layer (they began with the same input)."""
    return [(layer, layer + 1) for layer in range(1, L - 1, 2)]


def two_apart(L: int) -> list[tuple[int, int]]:
    """Even layers two apart from layer 2 on (they began as adjacent layers of the model grown from)."""
    return [(layer, layer + 2) for layer in range(2, L - 2, 2)]


def matching_depth_tau(rc: dict, n_ref: int) -> float:
    """The mean tau (last token, layers >= 1) over the layers that began as the `n_ref`-layer model's:
    every `L // n_ref`-th layer; NaN when the depth is not a multiple of `n_ref`."""
    t = np.array(rc["last"]["tau_mean"])
    if len(t) < n_ref or len(t) % n_ref:
        return float("nan")
    step = len(t) // n_ref
    return mean_tau_without_first(t[::step, ::step])


def depth_row(rc: dict, n_ref: int) -> dict:
    """One row of the depth table: the chapter's measures for one model (layer 0 excluded)."""
    t = np.array(rc["last"]["tau_mean"])
    L = len(t)
    return {"decoder layers": L, "questions": rc["n"],
            "tau (last)": tau(rc, "last"),
            "tau (text mean)": tau(rc, "text_mean"),
            "tau layer 0 vs others (last)": first_layer_tau(rc),
            "tau at matching depth (last)": matching_depth_tau(rc, n_ref),
            "tau adjacent layers (last)": pair_mean(t, adjacent(L)),
            "top-k": rc["last"]["overlap_k"],
            "nested (last)": nested(rc)}


def depth_table(rcs: dict[str, dict], index_name: str = "model") -> pd.DataFrame:
    """`depth_row` of every model (rows, in order), matching depth taken against the first model."""
    n_ref = len(next(iter(rcs.values()))["last"]["tau_mean"])
    df = pd.DataFrame({m: depth_row(r, n_ref) for m, r in rcs.items()}).T.astype(
        {"decoder layers": int, "questions": int, "top-k": int})
    df.index.name = index_name
    return df


def compared(a: float, b: float, fmt: str = "{:.2f}") -> str:
    """How `a` compares with `b` at the precision the page prints them."""
    if np.isnan(a) or np.isnan(b):
        return "not comparable with"
    a, b = fmt.format(a), fmt.format(b)
    if a == b:
        return "the same as"
    return "higher than" if float(a.rstrip("%")) > float(b.rstrip("%")) else "lower than"


def adjacent_spread(rc: dict) -> pd.DataFrame:
    """Per-question Kendall tau of adjacent layers, both queries: columns layers, tau, query."""
    return pd.DataFrame([{"layers": f"{layer}-{layer + 1}", "tau": v, "query": q} for q in QUERIES
                         for layer, vals in enumerate(rc[q]["per_sample_adjacent"]) for v in vals])


def at_depth(pairs, L: int) -> list[float]:
    """Position of each layer pair: its mean layer index over the number of layers (so that layer i of
    a model and layer 2i of one grown from it by doubling sit at the same place)."""
    return [(a + b) / (2 * L) for a, b in pairs]


def adjacent_by_depth(rc: dict, deep: dict) -> list[dict]:
    """The curves of the adjacent-layers-by-depth figure: label, x (relative depth), tau (last token)."""
    t, td = np.array(rc["last"]["tau_mean"]), np.array(deep["last"]["tau_mean"])
    L, Ld = len(t), len(td)
    out = []
    for label, mat, pairs, n in (
            (f"{L}-layer: adjacent layers", t, adjacent(L), L),
            (f"{Ld}-layer: within a copied pair (2i, 2i+1)", td, within_copies(Ld), Ld),
            (f"{Ld}-layer: across pairs (2i+1, 2i+2)", td, across_copies(Ld), Ld),
            (f"{Ld}-layer: layers 2i, 2i+2 (matching {L}-layer adjacent)", td, two_apart(Ld), Ld)):
        out.append({"label": label, "x": at_depth(pairs, n), "tau": [float(mat[p]) for p in pairs]})
    return out


def checkpoint_table(saved: dict) -> pd.DataFrame:
    """The shipped checkpoints' saved taus (`vtr.testbed.history.tau_by_checkpoint`), one row each."""
    table = pd.DataFrame(saved["checkpoints"]).T.infer_objects()[
        ["commit", "steps", "heldout", "last", "text_mean", "last_layer0"]]
    table.columns = ["commit", "stage 1-2 steps", "held-out acc.", "tau (last)", "tau (text mean)",
                     "tau layer 0 vs others (last)"]
    table.index.name = "checkpoint"
    return table


def checkpoint_facts(table: pd.DataFrame) -> dict:
    best = float(table["tau (last)"].max())
    return {"tau-ckpt-n": len(table), "tau-ckpt-max": best,
            "tau-ckpt-acc-min": float(table["held-out acc."].min()),
            "tau-ckpt-acc-max": float(table["held-out acc."].max()),
            "tau-ckpt-reading": NOT_SHARED if best < PARTLY_TAU else PARTLY_SHARED}


def verdicts(first: str, deep: str) -> dict:
    """The headline's verdicts on both models (`claims.rank_claim`, `claims.nested_claim`)."""
    from .. import claims

    return {"rank-verdict": claims.rank_claim(first).verdict,
            "nested-verdict": claims.nested_claim(first).verdict,
            "rank-verdict-deep": claims.rank_claim(deep).verdict,
            "nested-verdict-deep": claims.nested_claim(deep).verdict}


def facts(rcs: dict[str, dict], checkpoints: dict, first: str, deep: str, verdicts: dict) -> dict:
    """Every value the chapter glues: `rcs` are `runs.rank_consistency` results by model, `first` and
    `deep` the two compared (the first model and the deeper one), `checkpoints` the saved
    `tau_by_checkpoint` result, `verdicts` the headline's verdicts (`verdicts(first, deep)`)."""
    rc, rd = rcs[first], rcs[deep]
    depth = depth_table({first: rc, deep: rd})
    d8, dd = depth.iloc[0], depth.iloc[-1]
    td = np.array(rd["last"]["tau_mean"])
    within, across = pair_mean(td, within_copies(len(td))), pair_mean(td, across_copies(len(td)))
    return {
        "tau-last": tau(rc, "last"), "tau-tm": tau(rc, "text_mean"), "tau-first": first_layer_tau(rc),
        "rank-n": rc["n"], "nested": nested(rc), "overlap-k": rc["last"]["overlap_k"],
        **checkpoint_facts(checkpoint_table(checkpoints)),
        "tau-last-deep": float(dd["tau (last)"]), "tau-tm-deep": float(dd["tau (text mean)"]),
        "tau-first-deep": float(dd["tau layer 0 vs others (last)"]),
        "tau-match-deep": float(dd["tau at matching depth (last)"]),
        "tau-adj": float(d8["tau adjacent layers (last)"]),
        "tau-adj-deep": float(dd["tau adjacent layers (last)"]),
        "tau-within-deep": within, "tau-across-deep": across,
        "nested-deep": float(dd["nested (last)"]), "overlap-k-deep": int(dd["top-k"]),
        "depth-tau-cmp": compared(dd["tau (last)"], d8["tau (last)"]),
        "depth-match-cmp": compared(dd["tau at matching depth (last)"], d8["tau (last)"]),
        "depth-adj-cmp": compared(dd["tau adjacent layers (last)"], d8["tau adjacent layers (last)"]),
        "depth-nested-cmp": compared(dd["nested (last)"], d8["nested (last)"], "{:.0%}"),
        "depth-within-cmp": compared(within, across),
        **verdicts,
    }


# ------------------------------------------------------------------ how LLaVA-like the attention is
LITTLE = 0.2  # a share of the last token's attention this chapter calls "little"
CONCENTRATED = 0.5  # the top 10% of the vision tokens holding this much of it: "concentrated"
SINK = 0.05  # a token every instruction row gives at least this much attention: a sink
KINDS = {"first": "the first token", "vision": "a vision token", "text": "a text token"}


def profile_table(profiles: dict[str, dict], label: dict) -> pd.DataFrame:
    """`runs.attention_profile` of every model as one table: a row per (model, layer), the last
    token's attention share on the vision tokens (%), the share of that held by the top 1% and top
    10% of the vision tokens (%), the top sink candidate's least attention from any instruction row
    (%), its hidden-state norm over the median, what it usually is, and the largest norm ratio."""
    rows = []
    for m, p in profiles.items():
        name = f"{label[m]} layers" if isinstance(label[m], int) else m
        for r in p["layers"]:
            kinds = r.get("sink_kinds") or {}
            rows.append({"model": name, "layer": r["layer"], "vision share %": 100 * r["vision_share"],
                         "top 1% holds %": 100 * r["top_0.01"], "top 10% holds %": 100 * r["top_0.1"],
                         "sink: least attention %": 100 * r.get("sink_attention", float("nan")),
                         "sink norm ratio": r.get("sink_norm_ratio", float("nan")),
                         "sink is": KINDS[max(kinds, key=kinds.get)] if kinds else "none",
                         "largest norm ratio": r.get("max_norm_ratio", float("nan"))})
    return pd.DataFrame(rows).set_index(["model", "layer"])


def deep_half(layers: list[dict]) -> list[dict]:
    """The layers of the decoder's deeper half (layer index >= L / 2)."""
    return [r for r in layers if r["layer"] >= len(layers) / 2]


def profile_facts(profiles: dict[str, dict], label: dict) -> dict:
    """What the section glues: the uniform shares, and per model (suffix "" for the first model,
    "-deep" for the last) the vision share at layer 0 and over the deeper half, the top 10%'s hold
    there, the strongest sink's least attention, and one reading of all of it ("ap-reading")."""
    models = list(profiles)
    first = profiles[models[0]]["layers"][0]
    out = {"ap-uniform-1": 100 * first["uniform_0.01"], "ap-uniform-10": 100 * first["uniform_0.1"],
           "ap-n": profiles[models[0]]["n"], "ap-little": LITTLE, "ap-concentrated": CONCENTRATED,
           "ap-sink": SINK}
    readings = []
    for m, sfx in ((models[0], ""), (models[-1], "-deep")):
        layers = profiles[m]["layers"]
        deep = deep_half(layers)
        share = float(np.mean([r["vision_share"] for r in deep]))
        top10 = float(np.mean([r["top_0.1"] for r in deep]))
        sink = max((r.get("sink_attention", 0.0) for r in layers), default=0.0)
        out.update({f"ap-share-0{sfx}": layers[0]["vision_share"], f"ap-share-deep{sfx}": share,
                    f"ap-top10-deep{sfx}": top10, f"ap-sink-max{sfx}": sink})
        if sfx and models[0] == models[-1]:
            continue
        name = f"{label[m]}-layer model" if isinstance(label[m], int) else f"`{m}`"
        amount = ("little, as FastV describes LLaVA-1.5" if share < LITTLE else
                  "not little: unlike LLaVA-1.5 as FastV describes it, the deep layers still read the image")
        spread = ("concentrated on a few tokens, as FastV describes" if top10 >= CONCENTRATED
                  else "not concentrated")
        sinks = (f"A token that every instruction row attends to with at least {sink:.1%} acts as a sink."
                 if sink >= SINK else "No token acts as a sink: the strongest candidate receives at least "
                 f"{sink:.1%} of every instruction row's attention.")
        readings.append(f"On the {name}, the last token gives the vision tokens "
                        f"{layers[0]['vision_share']:.0%} of its attention at layer 0 and {share:.0%} on "
                        f"average over the deeper half of the "
                        f"layers, {amount}; there the top 10% of the vision tokens hold {top10:.0%} of it "
                        f"(uniform attention: {first['uniform_0.1']:.0%}), {spread}. {sinks}")
    out["ap-reading"] = " ".join(readings)
    late = [s for s in ("", "-deep") if out[f"ap-share-deep{s}"] >= LITTLE]
    out["ap-depends"] = (DEPENDS_UNLIKE if late else DEPENDS_LIKE)
    return out


DEPENDS_UNLIKE = (
    "The models here lack that property of LLaVA-1.5: their deep layers keep reading the image. Verdicts "
    "about removing vision tokens in the deeper layers (FastV's and PyramidDrop's late stages, VTW and "
    "DyVTE's exits, the three stages of chapter {ref}`dyvte`) are measured here on models for which late "
    "image tokens still matter, so a claim that such removal is free may fail here and still hold on "
    "LLaVA. The rank-consistency verdict compares the ranking within the image tokens, which their "
    "concentration rather than their share decides; it does not rest on the share.")
DEPENDS_LIKE = (
    "On this property the models here resemble LLaVA-1.5 as FastV describes it, so the verdicts about "
    "removing vision tokens in the deeper layers (FastV, PyramidDrop, VTW, DyVTE) are measured on a "
    "model where that removal should be cheap, as on LLaVA.")


PROFILE_MARKDOWN = {"ap-reading", "ap-depends"}  # the section's facts glued as MyST
