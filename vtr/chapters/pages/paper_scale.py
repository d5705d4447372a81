"""The paper-scale page: what the template profile names, and the GPU time every chapter would take
(`vtr.chapters.paper_scale`'s time model), with the facts the page quotes.

Which models are estimated depends on the profile: on the testbed LLaVA-1.5-7B (the published
page), on a benchmark profile its own checkpoints, each read from its `config.json`
(`estimated_models`); a checkpoint the time model cannot describe is named in one sentence. The
benchmark suite is the papers' seven on the testbed and the profile's benchmarks otherwise, at the
sizes of the splits LLaVA-1.5 reports.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...plan import Plan
from .. import paper_scale as ps

MARKDOWN = ("profile-note", "ps-models-note")  # facts glued as Markdown
PAPER_MODEL = "LLaVA-1.5-7B"
# each benchmark (vtr.benchmarks) -> its split in `paper_scale.SUITE`
SUITE_SPLITS = {"gqa": "GQA testdev-balanced", "pope": "POPE (3 COCO splits)", "mme": "MME",
                "textvqa": "TextVQA val", "scienceqa": "ScienceQA-IMG test", "mmbench": "MMBench dev",
                "vqav2": "VQAv2 test-dev"}
PARTS = ("benchmarks", "searches", "analysis")


def estimated_models(profile=None) -> tuple[dict[str, ps.Model], dict[str, str]]:
    """({name: time model} of the models estimated, {name: why not} of those the time model cannot
    describe): LLaVA-1.5-7B on the testbed (and where no checkpoint can be described), the profile's
    checkpoints otherwise."""
    from transformers import AutoConfig

    from ...experiments import profiles

    profile = profile or profiles.current()
    if profile.is_testbed:
        return {PAPER_MODEL: ps.Model()}, {}
    models, skipped = {}, {}
    for name, entry in profile.models.items():
        try:
            models[name] = ps.Model.from_config(AutoConfig.from_pretrained(entry.path, local_files_only=True))
        except ValueError as err:
            skipped[name] = str(err)
    return models or {PAPER_MODEL: ps.Model()}, skipped


def workload(benchmarks=None) -> ps.Workload:
    """The papers' workload over `benchmarks` (names of `vtr.benchmarks`; None: all seven)."""
    suite = {SUITE_SPLITS[b]: ps.SUITE[SUITE_SPLITS[b]] for b in benchmarks or () if b in SUITE_SPLITS}
    return ps.Workload(suite=suite) if suite else ps.Workload()


def models_note(models: dict[str, ps.Model], skipped: dict[str, str], testbed: bool) -> str:
    """The sentence naming what is estimated on a benchmark profile ("" on the testbed)."""
    if testbed:
        return ""
    said = "; ".join(f"`{n}` ({m.shape.n_layers} x {m.shape.hidden} decoder, {m.n_vision} vision tokens)"
                     for n, m in models.items())
    out = f"*On this profile the estimates are for its checkpoints: {said}; the text quotes the first.*"
    return out + "".join(f" *`{n}` is not estimated: {why}.*" for n, why in skipped.items())


# the GPU's fields (`vtr.chapters.paper_scale.GPU`) as the page names them
ASSUMPTION_NAMES = {"peak_tflops": "peak TFLOP/s (bf16)", "hbm_tbps": "memory bandwidth (TB/s)",
                    "utilisation": "sustained fraction of both peaks", "batch": "batch",
                    "n_gpus": "GPUs (data parallel)"}


def assumptions(gpu: ps.GPU, work: ps.Workload) -> pd.DataFrame:
    """Every assumption of the estimate, as the page lists it (values as written: a count as an
    integer, never 16.0)."""
    values = {**vars(gpu), "answer tokens": work.answer_tokens, "validation questions": work.val_questions}
    return pd.DataFrame([{"assumption": ASSUMPTION_NAMES.get(k, k.replace("_", " ")), "value": f"{v:g}"}
                         for k, v in values.items()])


def check_message(profile) -> str:
    """What `profile.check()` reports (its first 600 characters), the profile's file named
    relative to the repository; "" when every path exists."""
    from ...experiments.profiles import ProfileError
    from ...paths import REPO

    try:
        profile.check()
    except ProfileError as err:
        return str(err).replace(f"{REPO}/", "")[:600]
    return ""


def per_sample(plan: Plan, model: ps.Model, gpu: ps.GPU, work: ps.Workload) -> dict:
    return ps.seconds_per_sample(plan, model, gpu, work.answer_tokens)


def budget_table(model: ps.Model, gpu: ps.GPU, work: ps.Workload, budgets) -> pd.DataFrame:
    """Milliseconds of prefill and decode per sample unpruned and at each keep budget."""
    rows = [{"keep budget": f"{b:.1%}",
             **{k: 1e3 * v for k, v in per_sample(ps.at_budget(model, b), model, gpu, work).items()}}
            for b in (1.0, *budgets)]
    return pd.DataFrame(rows).rename(
        columns={"prefill": "prefill ms / sample", "decode": "decode ms / sample"})


def hours(n: int, plan: Plan, model: ps.Model, gpu: ps.GPU, work: ps.Workload) -> float:
    """GPU-hours of `n` samples under `plan`."""
    return n * sum(per_sample(plan, model, gpu, work).values()) / 3600


def benchmark_table(model: ps.Model, gpu: ps.GPU, work: ps.Workload) -> pd.DataFrame:
    """GPU-hours of one pass over each benchmark, unpruned and at a keep budget of 12.5%."""
    full = Plan.full(model.shape.n_layers, model.n_vision)
    return pd.DataFrame([{"benchmark": name, "questions": n,
                          "hours, unpruned": hours(n, full, model, gpu, work),
                          "hours, keep 12.5%": hours(n, ps.at_budget(model, 0.125), model, gpu, work)}
                         for name, n in work.suite.items()])


def chapter_table(model: ps.Model, gpu: ps.GPU, work: ps.Workload) -> pd.DataFrame:
    """Estimated GPU-hours of each chapter by part, their total on one GPU and on `gpu.n_gpus`, and
    the number of benchmark-suite passes each makes."""
    work_df = pd.DataFrame(ps.chapter_hours(model, gpu, work))
    per = work_df.pivot_table(index="chapter", columns="part", values="hours", aggfunc="sum", fill_value=0.0)
    per["total hours, 1 GPU"] = per.sum(axis=1)
    per[f"hours, {gpu.n_gpus} GPUs"] = per["total hours, 1 GPU"] / gpu.n_gpus
    passes = work_df[work_df.part == "benchmarks"].groupby("chapter")["samples"].sum() / work.suite_questions
    per.insert(0, "benchmark-suite passes", passes.reindex(per.index).fillna(0))
    return per


def keep_curve(model: ps.Model, gpu: ps.GPU, work: ps.Workload, keeps) -> pd.DataFrame:
    """Seconds of prefill and decode per sample when a fraction `keep` of the vision tokens is kept
    after layer 2 (FastV's schedule), for each keep."""
    L, N = model.shape.n_layers, model.n_vision
    return pd.DataFrame([{"keep": k, **per_sample(Plan.drop_at(L, N, 2, round(k * N)), model, gpu, work)}
                         for k in keeps])


def largest_chapter(per: pd.DataFrame) -> str:
    return per["total hours, 1 GPU"].idxmax()


def inputs(smoke: bool = False, profile=None) -> dict:
    """What the page shows: the template profile, the estimated models with the assumptions, each
    model's chapter table, and the first model's per-sample curve."""
    from ...engine import ADAPTERS
    from ...experiments import profiles
    from ...paths import REPO
    from . import profile_note

    profile = profile or profiles.current()
    models, skipped = estimated_models(profile)
    gpu, work = ps.GPU(), workload(None if profile.is_testbed else profile.benchmarks)
    first = next(iter(models))
    return {"testbed": profile.is_testbed, "models": models, "skipped": skipped, "first": first,
            "gpu": gpu, "work": work, "profile_note": profile_note(),
            "example": profiles.load(REPO / "book" / "paper_profile.example.yaml", check=False),
            "n_families": len(ADAPTERS), "per": {n: chapter_table(m, gpu, work) for n, m in models.items()},
            "curve": keep_curve(models[first], gpu, work, keeps(smoke))}


def hours_table(data: dict) -> pd.DataFrame:
    """The chapter table of the page: the one estimated model's, or every model's by model."""
    per = data["per"]
    if len(per) == 1:
        return next(iter(per.values()))
    return pd.concat(per, names=["model"])


def facts(data: dict) -> dict:
    """Every value the page glues, quoting the first estimated model, from `inputs()`."""
    model, gpu, work = data["models"][data["first"]], data["gpu"], data["work"]
    per, curve = data["per"][data["first"]], data["curve"]
    full = Plan.full(model.shape.n_layers, model.n_vision)
    t_full = per_sample(full, model, gpu, work)
    suite_n = work.suite_questions
    total = float(per["total hours, 1 GPU"].sum())
    ends = curve.iloc[[0, -1]]
    return {"profile-note": data["profile_note"],
            "ps-models-note": models_note(data["models"], data["skipped"], data["testbed"]),
            "ps-n-models": len(data["example"].models), "ps-n-benches": len(data["example"].benchmarks),
            "ps-n-families": data["n_families"],
            "ps-sustained": gpu.flops_per_s / 1e12, "ps-util": gpu.utilisation, "ps-peak": gpu.peak_tflops,
            "ps-batch": gpu.batch, "ps-answer": work.answer_tokens, "ps-ngpu": gpu.n_gpus,
            "ps-valn": work.val_questions, "ps-ms-prefill": 1e3 * t_full["prefill"],
            "ps-ms-decode": 1e3 * t_full["decode"], "ps-params": model.decoder_params / 1e9,
            "ps-suite-n": suite_n, "ps-suite-hours": hours(suite_n, full, model, gpu, work),
            "ps-vqav2-share": work.suite.get(SUITE_SPLITS["vqav2"], 0) / suite_n,
            "ps-total-hours": total, "ps-total-days": total / 24, "ps-total-hours-n": total / gpu.n_gpus,
            "ps-big-share": float(per.loc[largest_chapter(per), "total hours, 1 GPU"]) / total,
            "ps-passes": float(per["benchmark-suite passes"].sum()),
            "ps-search-share": float(per.get("searches", pd.Series(0.0)).sum()) / total,
            "ps-k0-ratio": float((ends.iloc[0]["prefill"] + ends.iloc[0]["decode"])
                                 / (ends.iloc[1]["prefill"] + ends.iloc[1]["decode"]))}


def keeps(smoke: bool) -> np.ndarray:
    """The keep fractions the per-sample figure plots."""
    return np.linspace(0.0, 1.0, 5 if smoke else 21)


def template_tables(example) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The template profile's checkpoints and benchmarks, as the page lists them."""
    models = pd.DataFrame([{"model": m.name, "dtype": m.dtype, "device": m.device or "auto",
                            "folder": str(m.path)} for m in example.models.values()])
    benches = pd.DataFrame([{"benchmark": b, "folder or file": str(p)}
                            for b, p in example.benchmarks.items()])
    return models, benches


def implemented_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The benchmark readers (first line of each module's docstring) and the engine's architectures."""
    from ...benchmarks import MODULES
    from ...engine import ADAPTERS

    readers = pd.DataFrame([{"benchmark": name,
                             # the docstring's code markers are not markup in a table cell
                             "official format and metric": (mod.__doc__ or "").strip().splitlines()[0]
                             .replace("`", "")}
                            for name, mod in MODULES.items()])
    families = pd.DataFrame([{"transformers class": cls, "engine family": a.family,
                              "position ids": "3-D M-RoPE" if a.mrope else "1-D RoPE",
                              "CLS token (encoder-side methods)": "yes" if a.cls_token else "no"}
                             for cls, a in ADAPTERS.items()])
    return readers, families
