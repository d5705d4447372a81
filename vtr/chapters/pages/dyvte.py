"""The DyVTE page: the three stages (attention mass, removing every visual token before a layer),
where the routers send the visual tokens away, DyVTE against VTW and FastV, and the facts the page
quotes.

The page's unsuffixed facts are the profile's first model's, its "-deep" facts the last model's (on
the testbed: the 8- and 16-layer testbeds; a one-model profile compares the model with itself).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import family_columns

MARKDOWN = ("profile-note", "dyvte-headline")  # facts glued as Markdown
TESTBED_NAMES = {"testbed": "8-layer", "testbed-deep": "16-layer"}
EXIT_TOLERANCE = 0.01  # "at a cost of at most 1 point", as the stages verdict


def pair(models: list[str]) -> tuple[str, str]:
    """(first, deep): the models of the unsuffixed and the "-deep" facts."""
    return models[0], models[-1]


def labels(models: list[str], testbed: bool) -> dict[str, str]:
    """How the page names each model: by depth on the testbed, by its profile name otherwise."""
    return {m: TESTBED_NAMES.get(m, m) if testbed else m for m in models}


def sweep_frame(accuracy: dict) -> pd.DataFrame:
    """`runs.vtw_sweep(m)["accuracy"]` (layer -> val accuracy, keys as saved) as rows by layer."""
    return (pd.DataFrame([{"exit before layer": int(layer), "val accuracy": a}
                          for layer, a in accuracy.items()])
            .sort_values("exit before layer").reset_index(drop=True))


def stage_facts(mass: pd.DataFrame, sweep: pd.DataFrame) -> dict:
    """The stages paragraph for one model: depth, accuracy keeping every visual token, removing them
    before layer 1 and before the middle layer, the earliest layer before which they can all leave at
    a cost of at most `EXIT_TOLERANCE`, and the layer where the question attends most to the image."""
    L = len(mass)
    acc = sweep.set_index("exit before layer")["val accuracy"]
    full = acc[L]
    ok = int(next(layer for layer in acc.index if acc[layer] >= full - EXIT_TOLERANCE))
    return {"layers": L, "full": float(full), "before1": float(acc[1]), "middle": L // 2,
            "before-middle": float(acc[L // 2]), "ok": ok, "ok-depth": ok / L,
            "peak": int(mass.loc[mass["text_to_image"].idxmax(), "layer"])}


def mass_table(mass: dict[str, pd.DataFrame], label: dict, key: str) -> pd.DataFrame:
    """Attention mass per layer of every model, with the layer as a fraction of the depth."""
    df = pd.concat([mass[m].assign(**{key: label[m], "layer / depth": mass[m]["layer"] / len(mass[m])})
                    for m in mass]).rename(columns=lambda c: c.replace("_to_", " -> ").replace("_", " "))
    return df.set_index([key, "layer"])[["layer / depth", "text -> image", "image -> image", "text -> text"]]


def sweep_table(sweep: dict[str, pd.DataFrame], mass: dict[str, pd.DataFrame], label: dict,
                key: str) -> pd.DataFrame:
    """Val accuracy removing every visual token before each layer, per model, with the change against
    keeping them all (points)."""
    rows = []
    for m, s in sweep.items():
        L = len(mass[m])
        full = s.set_index("exit before layer")["val accuracy"][L]
        rows.append(s.assign(**{key: label[m], "layer / depth": s["exit before layer"] / L,
                                "change (points)": 100 * (s["val accuracy"] - full)}))
    df = pd.concat(rows)[[key, "exit before layer", "layer / depth", "val accuracy", "change (points)"]]
    return df.set_index([key, "exit before layer"])


def kept_share(r: dict) -> np.ndarray:
    """Share of the test questions whose visual tokens are still present at each layer (a DyVTE
    record: each question keeps all its visual tokens until its exit, none afterwards)."""
    n_vision = r["mean_tokens"] / r["keep_rate"]  # tokens per image before any exit
    return np.array(r["vision_per_layer"]) / n_vision


def exit_shares(kept: np.ndarray) -> np.ndarray:
    """Share of questions whose visual tokens leave before layer l (1 .. L-1), then of those that
    never leave (the last entry), from `kept_share`."""
    return np.append(kept[:-1] - kept[1:], kept[-1])


def seeds(d: dict) -> list[str]:
    """The router seeds of a `runs.dyvte` result, in numeric order."""
    return sorted(d["seeds"], key=int)


def exit_rows(d: dict, name: str, key: str) -> list[dict]:
    """One row per router seed: where DyVTE's visual tokens leave on the test split."""
    rows = []
    for s in seeds(d):
        kept = kept_share(d["seeds"][s]["test"])
        L = len(kept)
        share = exit_shares(kept)
        top = int(share.argmax())
        rows.append({key: name, "seed": int(s), "decoder layers": L,
                     "mean layers with vision": float(kept.sum()), "as share of depth": float(kept.sum() / L),
                     "exited before the middle layer": float(1 - kept[L // 2]),
                     "never exited": float(kept[-1]),
                     "most frequent exit": "none" if top == L - 1 else f"before layer {top + 1}"})
    return rows


def run_rows(d: dict, name: str, key: str) -> list[dict]:
    """The comparison table's rows of one model: unpruned, DyVTE per seed, VTW and FastV at the same
    mean cost, FastV + DyVTE."""
    named = [("unpruned", d["full"])] + [(f"DyVTE seed {s}", d["seeds"][s]["test"]) for s in seeds(d)]
    named += [("VTW (same mean cost)", d["vtw"]), ("FastV (same mean cost)", d["fastv"]),
              ("FastV 0.5 + DyVTE", d["fastv_dyvte"])]
    return [{key: name, "run": n, "overall": 100 * r["overall"], **family_columns(r),
             "vision keep %": 100 * r["keep_rate"], "FLOPs %": 100 * r["flops_ratio"],
             "speedup": r.get("speedup")}
            for n, r in named]


def seed_summary(d: dict) -> dict:
    """DyVTE over its router seeds: decoder FLOPs saved (mean), accuracy change in points (mean of
    pruned - unpruned: negative is a drop, as everywhere in the book), its standard deviation over
    seeds, and the number of seeds."""
    tests = [d["seeds"][s]["test"] for s in seeds(d)]
    return {"saved": float(np.mean([1 - r["flops_ratio"] for r in tests])),
            "change": float(100 * np.mean([r["overall"] - d["full"]["overall"] for r in tests])),
            "spread": float(100 * np.std([r["overall"] for r in tests])), "seeds": len(tests)}


def inputs(models: list[str] | None = None) -> dict:
    """Every saved result the page reads (load-or-compute through `runs` and `claims`)."""
    from .. import claims, runs
    from . import profile_note

    models = models or runs.models()
    first, deep = pair(models)
    both = dict.fromkeys((first, deep))
    return {"models": models, "testbed": runs.is_testbed(),
            "mass": {m: runs.three_stages(m) for m in models},
            "sweep": {m: runs.vtw_sweep(m)["accuracy"] for m in models},
            "dyvte": {m: runs.dyvte(m) for m in models}, "profile_note": profile_note(),
            "claims": {m: {"st": claims.stages_claim(m), "dy": claims.dyvte_claim(m),
                           "cp": claims.complementary_claim(m)} for m in both},
            "generality": claims.generality_claim(first),
            "headline": claims.verdicts_md(claims.stages_claim, claims.dyvte_claim,
                                           claims.complementary_claim,
                                           claims.generality_claim, models=models)}


def frames(data: dict) -> dict:
    """The per-model frames the figures and tables read: attention mass and the removal sweep."""
    return {"mass": {m: pd.DataFrame(rows) for m, rows in data["mass"].items()},
            "sweep": {m: sweep_frame(acc) for m, acc in data["sweep"].items()}}


def key(data: dict) -> str:
    """The tables' model column: "testbed" on the testbed profile, "model" otherwise."""
    return "testbed" if data["testbed"] else "model"


def exits_table(data: dict) -> pd.DataFrame:
    label = labels(data["models"], data["testbed"])
    rows = [row for m in data["models"] for row in exit_rows(data["dyvte"][m], label[m], key(data))]
    return pd.DataFrame(rows).set_index([key(data), "seed"])


def runs_table(data: dict) -> pd.DataFrame:
    label = labels(data["models"], data["testbed"])
    rows = [row for m in data["models"] for row in run_rows(data["dyvte"][m], label[m], key(data))]
    return pd.DataFrame(rows).set_index([key(data), "run"])


def facts(data: dict) -> dict:
    """Every value the page glues, from `inputs()` (or the same structure built by hand)."""
    first, deep = pair(data["models"])
    f = frames(data)
    exits = exits_table(data)
    label = labels(data["models"], data["testbed"])
    out = {"profile-note": data["profile_note"], "dyvte-headline": data["headline"],
           "gen-verdict": data["generality"].verdict, "gen-measured": data["generality"].measured}
    for m, sfx in ((first, ""), (deep, "-deep")):
        out.update({f"st-{k}{sfx}": v for k, v in stage_facts(f["mass"][m], f["sweep"][m]).items()})
        e = exits.loc[label[m]]
        out.update({f"dy-exit-depth{sfx}": float(e["as share of depth"].mean()),
                    f"dy-exit-middle{sfx}": float(e["exited before the middle layer"].mean()),
                    f"dy-never{sfx}": float(e["never exited"].mean())})
        out.update({f"dy-{k}{sfx}": v for k, v in seed_summary(data["dyvte"][m]).items()})
        out.update({f"{c}-verdict{sfx}": row.verdict for c, row in data["claims"][m].items()})
    return out
