"""The testbed chapter (on a benchmark profile: the models unpruned): what its page glues and
tabulates, from `runs.testbed_accuracy` results (one per model: accuracy per family with the image
and with a blank image, and on the testbed the answer prior) and the testbed's shipped training
records (`training.json` beside each checkpoint) and probe (`runs.target_attention`).

On the testbed the families are its task families, as fractions; on a benchmark profile they are
the benchmarks, shown under their names in the papers (`tables.family_scores`: percentages, MME its
score) and without an answer prior. The recipe's numbers are the shipped testbed's on every profile:
the prose that cites them describes the testbed.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...experiments.profiles import BENCHMARK_NAMES
from ..runs import families_from_image, meets_target
from ..tables import family_scores

NAN = float("nan")
# attention per token on the named object over the other objects' that this page calls a preference
PREFERENCE = 1.5
# what a benchmark profile shows instead of the training curves (`pages.notice_figure`)
TRAINING_FIGURE = "The figure of the training curves"
CAVEAT = ("Read every later chapter with this in mind: pruning can only hurt a family the model answers from "
          "the image, so the comparisons below are informative mainly through those families; for the "
          "others, accuracy stays near the prior whatever is pruned.")
ALL_FROM_IMAGE = ("Every family is answered from the image, so pruning can hurt each of them, and the later "
                  "chapters' comparisons count all of them.")
SELECTS = ("The decoder prefers the object the question names over the other objects: the question's noun "
           "selects its patches, which is the binding the retrieval families need.")
NO_PREFERENCE = ("The decoder looks at objects, but hardly more at the object the question names than at "
                 "the others: whatever binding of the question's noun to its object it has learned (the "
                 "table above shows which families it answers from the image) is not a strong preference "
                 "in its attention.")
GUIDED = ("attention-guided selection on this testbed can be guided by the question: it keeps the named "
          "object's patches first.")
UNGUIDED = ("attention-guided selection on this testbed keeps objects over background, which text reading "
            "needs, but cannot be guided by the question.")


def first_per_family(samples) -> list:
    """The first question of each family, in the order the families first appear."""
    shown, seen = [], set()
    for s in samples:
        if s.family not in seen:
            seen.add(s.family)
            shown.append(s)
    return shown


def sample_title(s, testbed: bool, width: int = 28) -> str:
    """A sample's figure title: family, question, reference answer (a benchmark's shortened to `width`)."""
    if testbed:
        return f"{s.family}\n{s.question} ?\n-> {s.answer}"
    answer = s.answer[0] if isinstance(s.answer, list) and s.answer else s.answer
    question = " ".join(str(s.question).split())
    short = question if len(question) <= width else question[:width - 3] + "..."
    return f"{BENCHMARK_NAMES.get(s.family, s.family)}\n{short}\n-> {str(answer)[:width]}"


def parts(model) -> dict[str, str]:
    """A LLaVA-style model's parameter count per part, and its decoder, vision tower and attention."""
    inner = model.model
    count = {name: sum(p.numel() for p in part.parameters()) for name, part in [
        ("vision tower (CLIP)", inner.vision_tower), ("projector", inner.multi_modal_projector),
        ("decoder (Llama)", inner.language_model), ("LM head", model.lm_head)]}
    cfg = model.config
    text, vision = cfg.text_config, cfg.vision_config
    return {**{k: f"{v / 1e6:.2f} M" for k, v in count.items()},
            "decoder layers / hidden / heads": f"{text.num_hidden_layers} / {text.hidden_size} / "
                                               f"{text.num_attention_heads}",
            "vision layers / hidden / patch": f"{vision.num_hidden_layers} / {vision.hidden_size} / "
                                              f"{vision.patch_size}",
            "attention implementation": text._attn_implementation}


def model_table(models: dict) -> pd.DataFrame:
    """`parts` of each model (name -> model) as columns ("parameters" when there is one model)."""
    cols = {m: parts(model) for m, model in models.items()}
    if len(cols) == 1:
        cols = {"parameters": next(iter(cols.values()))}
    df = pd.DataFrame(cols)
    df.index.name = "part"
    return df


def scores(families: dict, overall: float, testbed: bool) -> dict[str, float]:
    """One column of an accuracy table: each family's score and the overall accuracy, in percent (MME its
    score on a benchmark profile); the testbed's rows are its families, a benchmark's its name."""
    if testbed:
        return {**{f: 100 * v for f, v in families.items()}, "overall": 100 * overall}
    return {**family_scores({"families": families}), "overall": 100 * overall}


def accuracy_table(acc: dict) -> pd.DataFrame:
    """One model's accuracy (%) per family with the image and with a blank image, and the answer prior
    where there is one (the testbed)."""
    testbed = acc.get("prior") is not None
    cols = {"with the image": scores(acc["families"], acc["overall"], testbed),
            "blank image": scores(acc["blank_image"]["families"], acc["blank_image"]["overall"], testbed)}
    if testbed:
        cols["answer prior"] = scores(acc["prior"], acc["prior_overall"], testbed)
    return pd.DataFrame(cols).loc[list(cols["with the image"])]  # the families' order, then overall


def models_table(accs: dict[str, dict], labels: dict[str, str]) -> pd.DataFrame:
    """Every model's accuracy (%) per family, with the image and with a blank image: two columns per
    model, named by `labels` (model -> column label)."""
    cols = {}
    for m, acc in accs.items():
        testbed = acc.get("prior") is not None
        cols[labels[m]] = scores(acc["families"], acc["overall"], testbed)
        blank = acc["blank_image"]
        cols[f"{labels[m]}, blank image"] = scores(blank["families"], blank["overall"], testbed)
    return pd.DataFrame(cols)


def weakest(acc: dict) -> float:
    """The lowest family accuracy (MME, a score rather than an accuracy, left out)."""
    values = [v for f, v in acc["families"].items() if f != "mme"]
    return min(values) if values else NAN


def _listed(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def accuracy_facts(acc: dict) -> dict:
    """The accuracy section's facts for the first model."""
    uses, near_prior = families_from_image(acc)
    testbed = acc.get("prior") is not None
    f1 = acc.get("exist_f1")
    return {
        "tb-overall": acc["overall"], "tb-blank": acc["blank_image"]["overall"],
        "tb-prior": acc["prior_overall"] if testbed else NAN,
        # the sentence's end: the answer prior exists where the questions' families are the testbed's
        "tb-prior-clause": (f"; always giving each family's most frequent answer would score "
                            f"{acc['prior_overall']:.1%}" if testbed else
                            " (the answer prior is computed on the testbed's families only)"),
        "tb-min-family": weakest(acc),
        "tb-exist-f1": f1 if f1 is not None else acc["families"].get("pope", NAN),
        "tb-n": acc["n"],
        "tb-uses": _listed(uses), "tb-near-prior": _listed(near_prior),
        "tb-target": ("met" if meets_target(acc) else "not met") if testbed else
                     "not applicable here",
        "tb-caveat": CAVEAT if set(uses) != set(acc["families"]) else ALL_FROM_IMAGE,
    }


def recipe_facts(meta: dict) -> dict:
    """The training section's facts, from a checkpoint's `training.json` (its recipe and wall time)."""
    recipe = meta["recipe"]
    if recipe.get("caption_steps"):
        caption = (f"Before those, the stage opens with {recipe['caption_steps']} steps of captioning, "
                   "as LLaVA's alignment stage trains on image-caption pairs: after "
                   "\u201cwhat is there ? assistant:\u201d the model names every object's colour, shape and "
                   "quadrant in reading order, then the word (Recipe.caption_steps, tasks.caption; loss on "
                   "every caption word).")
    else:
        caption = "There is no captioning phase (Recipe.caption_steps is 0)."
    every = recipe.get("caption_every", 0)
    if every:
        caption += (f" After that, captioning goes on through the stage: every {every}th step is a "
                    f"captioning step instead of a question step (Recipe.caption_every), so "
                    f"{recipe['lm_steps'] // every} of the stage's {recipe['lm_steps']} steps are captions.")
    return {
        "rc-batch": recipe["batch"], "rc-turns": recipe["max_turns"], "rc-stage1": recipe["lm_steps"],
        "rc-stage2": recipe["tune_steps"], "rc-aux-floor": recipe["aux_floor"],
        "rc-main-start": recipe["main_start"], "rc-curriculum": recipe["curriculum"],
        "rc-scenes": (f"each drawn from a fixed set of {recipe['scene_pool']} training scenes, like a "
                      "finite instruction set seen for several epochs (Recipe.scene_pool), with new "
                      "questions each time") if recipe.get("scene_pool") else
                     "each a freshly generated scene",
        "rc-caption": caption,
        "train-minutes": meta["seconds"] / 60, "train-threads": recipe["threads"],
    }


def deep_facts(acc: dict, layers: int, meta: dict) -> dict:
    """The deeper model's facts: its accuracy (`acc`, `layers`) and its training length (`meta`, the
    16-layer testbed's `training.json`)."""
    return {"deep-steps": meta["recipe"]["lm_steps"] + meta["recipe"]["tune_steps"], "deep-layers": layers,
            "deep-overall": acc["overall"], "deep-blank": acc["blank_image"]["overall"],
            "deep-min-family": weakest(acc), "deep-uses": _listed(families_from_image(acc)[0])}


def lift_table(ta: dict) -> pd.DataFrame:
    """The probe's lift per region (rows) and query x layer (columns "last L0", ...)."""
    lift = pd.DataFrame({q: pd.DataFrame(ta[q]).T.stack() for q in ("last", "text_mean")})
    lift.index.names = ["region", "layer"]
    table = lift.unstack("layer").round(2)
    table.columns = [f"{q} L{layer}" for q, layer in table.columns]
    return table


def lift_rows(ta: dict) -> pd.DataFrame:
    """`lift_table` with a row per query and layer ("last L0", ...) and a column per region."""
    rows = lift_table(ta).T
    rows.index.name = "query, layer"
    return rows


def attention_facts(ta: dict | None, unavailable: str = "") -> dict:
    """The probe's facts: where the trigger prefers the named object most, and the reading. Without a
    probe (`ta` None: a benchmark profile) the numbers are NaN and the reading is `unavailable`."""
    if ta is None:
        return {"ta-n": 0, "ta-best-layer": "none", "ta-target": NAN, "ta-others": NAN, "ta-ratio": NAN,
                "ta-background": NAN, "ta-verdict": unavailable, "ta-pruning": "this probe does not apply.",
                "ta-reading": unavailable}
    last = pd.DataFrame(ta["last"])
    best = int(last["target"].idxmax())
    ratio = float(last["target"][best] / last["other objects"][best])
    selects = ratio >= PREFERENCE
    out = {
        "ta-n": ta["n"], "ta-best-layer": best, "ta-target": float(last["target"][best]),
        "ta-others": float(last["other objects"][best]), "ta-ratio": ratio,
        "ta-background": float(last["background"][best]),
        "ta-verdict": SELECTS if selects else NO_PREFERENCE,
        "ta-pruning": GUIDED if selects else UNGUIDED,
    }
    out["ta-reading"] = (
        f"On {out['ta-n']} such questions, the trigger's attention (`last`) at layer {best}, where it "
        f"prefers the named object most, gives that object {out['ta-target']:.1f} times its token share, "
        f"the other objects {out['ta-others']:.1f} times theirs and the background "
        f"{out['ta-background']:.2f}: a ratio of {ratio:.2f} between the named object and the others. "
        f"{out['ta-verdict']} (This chapter calls a ratio of {PREFERENCE:g} or more a preference.) For "
        f"the pruning chapters this means that {out['ta-pruning']}")
    return out


MARKDOWN = {"ta-reading"}  # the facts glued as MyST (the others are plain values)


def facts(accs: dict[str, dict], first: str, deep: str, layers: dict[str, int], meta: dict, deep_meta: dict,
          attention: dict | None, unavailable: str = "") -> dict:
    """Every value the chapter glues. `accs`: `runs.testbed_accuracy` by model; `first` the model the
    page starts from, `deep` the deeper one (the last of the profile); `layers` each model's decoder
    layers; `meta`, `deep_meta` the shipped testbeds' `training.json`; `attention` the probe
    (`runs.target_attention`, None where it does not apply, with the sentence `unavailable`)."""
    from ...testbed import scenes
    from ...testbed.model import TestbedSpec

    out = {"n-vision": scenes.GRID ** 2, "n-layers": TestbedSpec().text_layers,
           "image-size": scenes.IMAGE_SIZE,
           **accuracy_facts(accs[first]), **recipe_facts(meta),
           **deep_facts(accs[deep], layers[deep], deep_meta), **attention_facts(attention, unavailable)}
    return {k: _plain(v) for k, v in out.items()}


def _plain(v):
    """Python scalars, so that a glued value prints as the number it is (not np.float64(...))."""
    if isinstance(v, np.generic):
        return v.item()
    return v if not (isinstance(v, float) and math.isnan(v)) else NAN


def training_curves(log: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A training log's curves: the vision tower's per-patch accuracy per label (stage 0), the
    decoder's loss per step and task (stages 1-2), and the held-out accuracy per family and overall."""
    vis = pd.DataFrame([{"step": r["step"], **r["fg_patch_acc"]} for r in log if r["stage"] == 0])
    held = pd.DataFrame([{"step": r["step"], "family": f, "accuracy": a} for r in log if "heldout" in r
                         for f, a in [*r["heldout"]["families"].items(),
                                      ("overall", r["heldout"]["overall"])]])
    loss = pd.DataFrame([{"step": r["step"], "loss": r["loss"], "stage": r["stage"],
                          "task": r.get("task", "questions")} for r in log if r["stage"] > 0 and "loss" in r])
    return vis, loss, held
