"""The book's timings (part of `vtr.chapters.runs`, which re-exports them): the methods and field
tables' timing rows, each policy timed once per build (`timed_rows`), chapter 8's prefill and decode
cost per keep rate and its growth with the image, and end-to-end generation. The shared
helpers and every result are reached through `runs` (`R.first_model()`, `R.gsearch()`), so that one
replaced there is the one every caller sees.
"""
from __future__ import annotations

import json

from ...experiments import policies, runners, searches, store
from ...experiments.sizes import size
from ...plan import Plan
from .. import runs as R


# ------------------------------------------------------------------ the tables' timing rows
def timed_rows(runner, inputs: dict, chosen: dict, model: str, group: str) -> list[dict]:
    """`vtr.timing.prefill_policies` rows of one row group (`chosen`: method -> policy), each
    policy timed once per build and model: a policy whose `Policy.identity` (its plan and selection
    rule) was timed before, in this group or an earlier one, shows that row, named for its method,
    with `timed_as` (the method and group it was timed as). The rows are kept in the results folder
    ("prefill_rows.jsonl", keyed by model, identity, batch, rounds and warm-up), so the methods and
    field tables and a resumed build share them. A policy without an identity is timed on its own
    row."""
    from ... import journal, timing

    repeats, warmup = size("table_speed_repeats"), size("table_speed_warmup")

    def key_of(policy):
        identity = policy.identity()
        if identity is None:
            return None
        return json.dumps({"model": model, "identity": identity, "batch": len(inputs["input_ids"]),
                           "repeats": repeats, "warmup": warmup}, sort_keys=True)

    path = store.store_path("prefill_rows")
    known = {r["key"]: r for r in journal.read(path)} if path.exists() else {}
    keys = {name: key_of(p) for name, p in chosen.items()}
    todo, first = {}, {}
    for name, p in chosen.items():
        k = keys[name]
        if k is None or (k not in known and k not in first):
            todo[name] = p
            if k is not None:
                first[k] = name
    timed = {r["name"]: r for r in timing.prefill_policies(runner.model, inputs, todo, repeats=repeats,
                                                           warmup=warmup)} if todo else {}
    fresh = [{"key": keys[n], "row": r, "group": group} for n, r in timed.items() if keys[n] is not None]
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        journal.append(path, fresh)
        known.update({f["key"]: f for f in fresh})
    rows = []
    for name in chosen:
        k = keys[name]
        if name in timed:
            rows.append(timed[name])
        elif k in first:  # a method of this group with another method's plan and rule
            rows.append({**timed[first[k]], "name": name, "timed_as": f"{first[k]} ({group})"})
        else:
            was = known[k]
            rows.append({**was["row"], "name": name, "timed_as": f"{was['row']['name']} ({was['group']})"})
    return rows


# ------------------------------------------------------------------ chapter 8: efficiency
def efficiency() -> dict:
    def compute():
        import torch

        from ... import timing, tiny

        runner, test = runners.get("test")
        L = runner.model.config.get_text_config().num_hidden_layers
        keeps = [1.0, 0.75, 0.5, 0.25, 0.125, 0.0]
        batch = size("efficiency_batch")
        inputs = runner.inputs(test.samples[:batch], test)
        rows = timing.prefill(runner.model, inputs, timing.keep_plans(L, runner.n_vision, keeps),
                             repeats=size("prefill_repeats"))
        dec = [{"keep": k, **timing.decode(runner.model, inputs,
                                           Plan.drop_at(L, runner.n_vision, 1, round(k * runner.n_vision)),
                                           new_tokens=size("decode_new_tokens"),
                                           repeats=size("decode_repeats"))}
               for k in (0.5, 0.25, 0.125)]
        # cost growth with the number of vision tokens: a random-init LLaVA at several resolutions
        growth = []
        for side in size("growth_sizes"):
            model = tiny.build_sized(image_size=side)
            inp = tiny.make_inputs(model, "llava", batch=4)
            n = tiny.n_image_tokens(model, "llava")
            quarter = Plan.drop_at(model.config.text_config.num_hidden_layers, n, 1, round(0.25 * n))
            r = timing.prefill(model, inp, {"keep=0.25": quarter}, repeats=size("growth_repeats"))[0]
            growth.append({"image_size": side, "n_vision": n, **r})
            del model
            torch.set_num_threads(torch.get_num_threads())
        return {"prefill": rows, "decode": dec, "growth": growth, "batch": batch}
    return R.cached("efficiency", compute)


GENERATION_METHODS = ("fastv", "pdrop")  # plan-based methods timed end to end at every budget


def generation(model: str | None = None) -> dict:
    """End-to-end generation of one testbed (`vtr.timing.generate`): FastV and PyramidDrop at every
    budget (G-Search's plan too on the 8-layer testbed), one interleaved run per output length."""
    model = model or R.first_model()

    def compute():
        from ... import timing
        from ...plan import PlanError

        runner, test = runners.get("test", model)
        info = searches.info_for(runner, test)
        plans, skipped = {}, []
        for budget in R.BUDGETS:
            for name in GENERATION_METHODS:
                try:
                    plans[f"{name} {budget}"] = policies.policy_for(runner, test, name, budget).plan
                except PlanError as err:  # reported, not hidden
                    skipped.append(f"{name} at {budget}: {err}")
        if model == R.first_model():
            plans["gsearch"] = Plan(tuple(R.gsearch()["last"]["search"]["plan"]), info.n_vision)
        inputs = runner.inputs(test.samples[:size("generate_batch")], test)
        rows = timing.generate(runner.model, inputs, plans, list(size("generate_new_tokens")),
                               repeats=size("generate_repeats"))
        return {"rows": rows, "skipped": skipped, "batch": size("generate_batch"), "model": model,
                "n_layers": info.n_layers}
    return R.cached(R.named("generation", model), compute)
