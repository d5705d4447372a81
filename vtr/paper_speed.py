"""The main paper's speed table at paper scale: its plans on the papers' architectures, random weights.

`PLANS` are the plans the paper times (FastV at K=2 keeping 50% / 25%, PyramidDrop's default,
VisionZip at 192 / 128 / 64 tokens, P-Sigmoid at the 0.125 budget, G-Search's searched plan shape
stretched to the model's depth). The two searched plans depend on a search's result: G-Search's
as its per-layer keep rates (`gsearch_rates`, any depth, stretched by relative depth) and
P-Sigmoid's as its fitted (a, k, b) whose midpoint is re-solved for the budget; without them
those rows are skipped and the result says so. `run` measures prefill and generation of every
plan against the unpruned model (`vtr.timing.prefill_policies`, `generate_policies`) on each
configured (architecture, tokens, batch) and returns one JSON-ready dict; `figure` draws it.
"""
from __future__ import annotations

import datetime
import shlex
import sys

from . import __version__
from .engine import PlanPolicy
from .plan import Plan
from .timing import device_info, generate_policies, prefill_policies

# (architecture, batch sizes) the paper-scale table measures: llava-1.5-7b at 576 vision tokens,
# LLaVA-NeXT at its AnyRes count (the largest grid: 5 crops of 576)
SETUPS = (("llava-1.5-7b", (1, 8)), ("llava-next-vicuna-7b", (1,)))
NEW_TOKENS = (16, 128)
VISIONZIP_TOKENS = (192, 128, 64)  # of LLaVA-1.5's 576
FASTV_LAYER, FASTV_KEEPS = 2, (0.5, 0.25)
PSIGMOID_BUDGET = 0.125


def stretch(rates, n_layers: int) -> list[float]:
    """Per-layer keep rates of a plan found on another depth, at the same relative depths."""
    rates = list(rates)
    return [rates[min(len(rates) - 1, layer * len(rates) // n_layers)] for layer in range(n_layers)]


def policies(model, n_vision: int, n_text: int, gsearch_rates=None, psigmoid=None) -> tuple[dict, list[str]]:
    """(name -> policy, skipped lines) of the paper's plans on `model`."""
    from .errors import InputError
    from .methods import get, model_info
    from .search.psigmoid import SigmoidParams, solve_budget

    info = model_info(model, n_vision, n_text)
    L = info.n_layers
    out, skipped = {}, []
    for keep in FASTV_KEEPS:
        plan = Plan.drop_at(L, n_vision, FASTV_LAYER, round(keep * n_vision))
        name = f"FastV K={FASTV_LAYER} R={round((1 - keep) * 100)}%"
        out[name] = PlanPolicy(plan, query="last", source="previous", scale_to_input=True)
    try:
        out["PyramidDrop (default)"] = get("pdrop")(info, scale_to_input=True)
    except InputError as e:  # a decoder too shallow for its stages: say so, time the rest
        skipped.append(f"PyramidDrop: {e}")
    for count in VISIONZIP_TOKENS:
        out[f"VisionZip {count}"] = get("visionzip")(info, budget=count / 576, kind="keep")
    if psigmoid is not None:
        try:  # a truncated decoder (--layers) may not reach the budget: say so, time the rest
            sol = solve_budget(SigmoidParams(*psigmoid), PSIGMOID_BUDGET, "keep", n_layers=L,
                               n_vision=n_vision)
            out[f"P-Sigmoid {PSIGMOID_BUDGET}"] = PlanPolicy(sol.plan, query="last", source="previous")
        except InputError as e:
            skipped.append(f"P-Sigmoid: {e}")
    else:
        skipped.append("P-Sigmoid: no fitted (a, k, b) given (--psigmoid a,k,b from a P-Sigmoid search)")
    if gsearch_rates is not None:
        plan = Plan.from_rates(stretch(gsearch_rates, L), n_vision)
        out["G-Search (searched shape)"] = PlanPolicy(plan, query="last", source="previous")
    else:
        skipped.append("G-Search: no searched plan given (--gsearch-rates from a G-Search result)")
    return out, skipped


def _encoder_ok(policy, model, inputs) -> str | None:
    """None when `policy` runs on these inputs, else the one-line reason (e.g. VisionZip on AnyRes crops)."""
    import torch

    from .engine import prune
    from .errors import InputError

    try:
        with torch.inference_mode(), prune(model, policy):
            model(**inputs, use_cache=False, logits_to_keep=1)
    except InputError as e:
        return str(e)
    return None


def run(load, setups=SETUPS, new_tokens=NEW_TOKENS, repeats: int = 3, warmup: int = 1, gsearch_rates=None,
        psigmoid=None, log=print) -> dict:
    """Every setup's prefill and generation. `load(name, batch)` -> (model, inputs, n_vision, description)."""
    results, device = [], None
    for name, batches in setups:
        for batch in batches:
            log(f"{name}, batch {batch}: building")
            model, inputs, n_vision, desc = load(name, batch)
            device = device or device_info(next(model.parameters()).device)
            n_text = int(inputs["attention_mask"][-1].sum()) - n_vision
            pols, skipped = policies(model, n_vision, n_text, gsearch_rates, psigmoid)
            for pname in list(pols):
                if pols[pname].uses_encoder:
                    reason = _encoder_ok(pols[pname], model, inputs)
                    if reason:
                        skipped.append(f"{pname}: {reason}")
                        del pols[pname]
            log(f"{name}, batch {batch}: prefill of {len(pols)} plans")
            pre = prefill_policies(model, inputs, pols, repeats=repeats, warmup=warmup, memory=True)
            log(f"{name}, batch {batch}: generation, {list(new_tokens)} new tokens")
            gen = generate_policies(model, inputs, pols, list(new_tokens), repeats=repeats, warmup=warmup)
            results.append({**desc, "batch": batch, "prefill": pre, "generate": gen, "skipped": skipped})
            del model, inputs
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"device": device, "date": now.isoformat(timespec="seconds"),
            "command": shlex.join(["vtr", *sys.argv[1:]]), "vtr_version": __version__, "results": results}


def table(result: dict) -> list[dict]:
    """One row per (setup, plan): prefill speedup and FLOPs ratio, first-token and total speedups per
    output length, peak-memory ratios."""
    rows = []
    for r in result["results"]:
        gen = {(g["name"], g["new_tokens"]): g for g in r["generate"]}
        for p in r["prefill"]:
            row = {"model": r["model"], "n_layers": r["n_layers"], "n_vision": r["n_vision"],
                   "batch": r["batch"], "plan": p["name"], "prefill speedup": p["speedup"],
                   "FLOPs ratio": p["flops_ratio"], "prefill peak ratio": p.get("prefill_peak_ratio")}
            for n in sorted({k[1] for k in gen}):
                g = gen.get((p["name"], n))
                if g:
                    row[f"total speedup ({n} tokens)"] = g["total_speedup"]["median"]
                    row[f"decode peak ratio ({n} tokens)"] = g["decode_peak_ratio"]
            rows.append(row)
    return rows


def figure(result: dict):
    """Prefill and total-generation speedup per plan, one panel per setup."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = result["results"]
    fig, axes = plt.subplots(1, max(1, len(res)), figsize=(5 * max(1, len(res)), 4), squeeze=False)
    for ax, r in zip(axes[0], res):
        names = [p["name"] for p in r["prefill"]]
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [p["speedup"] for p in r["prefill"]], 0.4, label="prefill")
        longest = max((g["new_tokens"] for g in r["generate"]), default=None)
        total = {g["name"]: g["total_speedup"]["median"] for g in r["generate"]
                 if g["new_tokens"] == longest and g["name"] != "unpruned"}
        ax.bar([i + 0.2 for i in x], [total.get(n, 0) for n in names], 0.4,
               label=f"generate {longest} tokens")
        ax.axhline(1, color="k", lw=0.8)
        ax.set_xticks(list(x), names, rotation=60, ha="right", fontsize=7)
        ax.set(ylabel="speedup vs unpruned",
               title=f"{r['model']} ({r['n_layers']} layers), {r['n_vision']} tokens, batch {r['batch']}")
        ax.legend(fontsize=7)
    dev = result.get("device") or {}
    fig.suptitle(f"{dev.get('device_name', '?')}, {result['date']}", fontsize=8)
    fig.tight_layout()
    return fig
