"""The introduction's facts: how the profile's models answer unpruned, the definitions box, the
headline table with its verdict counts, and the claims whose verdict differs between the models.

`facts()` gathers every value the page glues; the helpers below it take plain inputs (accuracy
results, headline claims, column labels) so they can be checked on synthetic ones. On the testbed
profile a model is named by its depth ("8 layers", "the 16-layer testbed"), elsewhere by its name.
"""
from __future__ import annotations

from collections import Counter

VERDICTS = ("reproduced", "partly", "not reproduced", "not tested")
# keys whose value is MyST Markdown (the page glues them as Markdown, the others as they are)
MARKDOWN = frozenset({"profile-note", "definitions-box", "headline-table", "headline-counts",
                      "intro-others", "depth-summary", "intro-gpu-hours"})


def label(model: str, depth: int, testbed: bool) -> str:
    """A model's name in a table header: its depth on the testbed ("8 layers"), else its name."""
    return f"{depth} layers" if testbed else f"`{model}`"


def place(model: str, depth: int, testbed: bool) -> str:
    """A model in a sentence: "the 8-layer testbed", or its name."""
    return f"the {depth}-layer testbed" if testbed else f"`{model}`"


def readout(accuracies: dict, testbed: bool, depths: dict) -> dict:
    """The "Read this first" facts from `runs.testbed_accuracy()` of each model (in profile
    order): the first model's accuracy with and without the image, the families it answers from the
    image and the others, whether it meets the testbed's target, and one sentence on the others."""
    from .. import runs

    models = list(accuracies)
    first = accuracies[models[0]]
    uses, near = runs.families_from_image(first)
    if testbed:
        target = ("It meets the testbed's target accuracy (overall 90%, every family 80%)."
                  if runs.meets_target(first) else "It falls short of the testbed's target accuracy (overall "
                  "90%, every family 80%); the verdicts below rest mostly on the families it answers from "
                  "the image.")
    else:
        target = "This profile sets no accuracy target (the testbed's is overall 90%, every family 80%)."
    others = " ".join(
        f"{place(m, depths[m], testbed)[0].upper()}{place(m, depths[m], testbed)[1:]} answers "
        f"{accuracies[m]['overall']:.1%} ({accuracies[m]['blank_image']['overall']:.1%} with a blank image)."
        for m in models[1:])
    return {"intro-overall": first["overall"], "intro-blank": first["blank_image"]["overall"],
            "intro-uses": ", ".join(uses) or "none", "intro-near": ", ".join(near) or "none",
            "intro-target": target, "intro-others": others}


# the header of the paper's-number column (no apostrophe: the page would typeset it as a curly one,
# and the CSV's header must read as the page's)
PAPER_VALUE = "paper reports"


def headline_md(table: list, models: list, labels: dict) -> str:
    """The headline table as MyST: paper, claim (linked to its chapter), the paper's number, then a
    measurement and a verdict column per model."""
    head = " | ".join(f"{labels[m]}: measurement | {labels[m]}: verdict" for m in models)
    md = [f"| paper | claim | {PAPER_VALUE} | {head} |", "|---" * (3 + 2 * len(models)) + "|"]
    for c in table:
        cells = " | ".join(f"{c.results[m][0]} | **{c.results[m][1]}**" for m in models)
        md.append(f"| {c.paper} | {c.claim} ({{ref}}`{c.chapter}`) | {c.paper_value} | {cells} |")
    return "\n".join(md)


HEADLINE_LABEL = "tab-headline"
HEADLINE_CAPTION = ("The papers' claims and the later benchmarks' findings: each source's number beside "
                    "what each model measured and the verdict of the claim's rule.")


def headline_block(table: list, models: list, labels: dict) -> str:
    """The headline table as a numbered, captioned MyST table (label `HEADLINE_LABEL`)."""
    return (f"```{{table}} {HEADLINE_CAPTION}\n:name: {HEADLINE_LABEL}\n\n"
            + headline_md(table, models, labels) + "\n```")


def headline_frame(table: list, models: list, labels: dict):
    """The headline table's values, for its CSV, under the page's headers: paper, claim, the paper's
    number, then a measurement and a verdict column per model."""
    import pandas as pd

    return pd.DataFrame([{"paper": c.paper, "claim": c.claim, PAPER_VALUE: c.paper_value,
                          **{f"{labels[m]}: {what}": c.results[m][i] for m in models
                             for i, what in enumerate(("measurement", "verdict"))}} for c in table])


def save_headline() -> None:
    """Write the CSVs of the headline table and, on a benchmark profile, the GPU-hours table
    (`save_table`; the page shows both as MyST)."""
    from .. import claims, runs
    from ..figures import save_table

    models = runs.models()
    labels = {m: label(m, runs.n_layers(m), runs.is_testbed()).strip("`") for m in models}
    save_table(headline_frame(claims.headline(models), models, labels), HEADLINE_LABEL, glue=False)
    hours, _ = gpu_hours()
    if hours is not None:
        save_table(hours, GPU_HOURS_LABEL, glue=False)


def verdict_counts(table: list, models: list) -> dict:
    """{model: {verdict: how many claims got it}} for every verdict of `VERDICTS`."""
    counts = {m: Counter(c.results[m][1] for c in table) for m in models}
    return {m: {v: counts[m][v] for v in VERDICTS} for m in models}


def counts_md(table: list, models: list, places: dict) -> str:
    """The verdict counts of every model, as the clause after "Of N claims,"."""
    counts = verdict_counts(table, models)
    return "; ".join(f"on {places[m]} {n['reproduced']} reproduced, {n['partly']} partly, "
                     f"{n['not reproduced']} did not and {n['not tested']} could not be tested"
                     for m, n in counts.items())


def changed_md(table: list, models: list, testbed: bool, depths: dict) -> str:
    """The sentence opening "What changed with depth": on the testbed the claims whose verdict the
    deeper testbed changed; elsewhere the claims whose verdict differs between the profile's models,
    or that there is one model."""
    from ..claims import depth_changes

    if len(models) < 2:
        return f"This profile has one model (`{models[0]}`): there is nothing to compare."
    pair = models[:2] if testbed else models
    changed = depth_changes(table, pair)
    if testbed:
        a, b = pair
        listed = "; ".join(f"*{c.claim}* ({c.results[a][1]} on {depths[a]} layers, {c.results[b][1]} on "
                           f"{depths[b]})" for c in changed) or "none"
        return f"Doubling the depth changed the verdict of {len(changed)} claims: {listed}."
    listed = "; ".join(f"*{c.claim}* (" + ", ".join(f"{c.results[m][1]} on `{m}`" for m in pair) + ")"
                       for c in changed) or "none"
    names = ", ".join(f"`{m}`" for m in pair)
    return f"Between this profile's models ({names}) the verdict differs for {len(changed)} claims: {listed}."


def facts() -> dict:
    """Every value the introduction glues, for the active profile (see `MARKDOWN` for which are
    MyST). Reads (or computes) the headline's results through `runs` and `claims`."""
    from .. import claims, definitions, runs
    from ...experiments import runners
    from . import profile_note

    models, testbed = runs.models(), runs.is_testbed()
    depths = {m: runs.n_layers(m) for m in models}
    out = {"profile-note": profile_note()}
    out.update(readout({m: runs.testbed_accuracy(m) for m in models}, testbed, depths))
    runner, test = runners.get("test")
    _, val = runners.get("val")
    out["definitions-box"] = definitions.box(len(val), len(test), runner.n_vision)
    table = claims.headline(models)
    out["headline-table"] = headline_block(table, models, {m: label(m, depths[m], testbed) for m in models})
    out["n-claims"] = len(table)
    out["headline-counts"] = counts_md(table, models, {m: place(m, depths[m], testbed) for m in models})
    out["depth-summary"] = changed_md(table, models, testbed, depths)
    out["intro-gpu-hours"] = gpu_hours_block()
    return out


GPU_HOURS_LABEL = "tab-intro-gpu-hours"


def gpu_hours() -> tuple:
    """Before a benchmark profile's experiments run: the estimated GPU hours of each chapter (rows)
    for each of its checkpoints (columns), from `pages.paper_scale`'s time model, with the "all
    chapters" total last, and the sentence that introduces it. (None, "") on the testbed."""
    import pandas as pd

    from ...experiments import profiles
    from . import paper_scale

    profile = profiles.current()
    if profile.is_testbed:
        return None, ""
    models, skipped = paper_scale.estimated_models(profile)
    gpu, work = paper_scale.ps.GPU(), paper_scale.workload(profile.benchmarks)
    hours = pd.DataFrame({name: paper_scale.chapter_table(model, gpu, work)["total hours, 1 GPU"]
                          for name, model in models.items()}).fillna(0.0)
    hours.loc["all chapters"] = hours.sum()
    hours.index.name = "chapter"
    note = "".join(f" `{n}` is not estimated: {why}." for n, why in skipped.items())
    intro = (f"**Before the experiments: estimated GPU hours** on one GPU ({gpu.peak_tflops:g} TFLOP/s "
             f"peak at {gpu.utilisation:.0%}), per chapter and checkpoint of this profile, from the time "
             f"model of chapter {{ref}}`paper-scale`.{note}")
    return hours, intro


def _hours_md(hours) -> str:
    rows = ["| chapter | " + " | ".join(f"`{n}`" for n in hours.columns) + " |",
            "|---" * (1 + len(hours.columns)) + "|"]
    rows += [f"| {c} | " + " | ".join(f"{h:.3g}" for h in hours.loc[c]) + " |" for c in hours.index]
    return "\n".join(rows)


def gpu_hours_md() -> str:
    """`gpu_hours()` as Markdown for a terminal (`make book` prints it before a profile's build)."""
    hours, intro = gpu_hours()
    return "" if hours is None else intro + "\n\n" + _hours_md(hours)


def gpu_hours_block() -> str:
    """`gpu_hours()` on the introduction: the sentence, then a numbered, captioned MyST table."""
    hours, intro = gpu_hours()
    if hours is None:
        return ""
    caption = "Estimated GPU hours per chapter (rows) and checkpoint (columns), on one GPU"
    return f"{intro}\n\n```{{table}} {caption}\n:name: {GPU_HOURS_LABEL}\n\n{_hours_md(hours)}\n```"
