"""The book's results on what later benchmark studies found (chapter `later-benchmarks`; part of
`vtr.chapters.runs`, which re-exports them): the methods those studies added, at the field's
budgets beside the field table's rows; the batch invariance of every policy; and the unpruned
model's attention profile (chapter 3). Helpers and other results are reached through `runs`.
"""
from __future__ import annotations

from ... import findings
from ...experiments import evaluations, policies, runners
from ...experiments.sizes import size
from .. import runs as R

# the methods the later benchmarks (VTC-Bench, UniPruneBench) and llmc compare beyond the book's set
LATER_METHODS = ("downsample", "pool", "dart", "divprune")
BATCH_BUDGET = 0.25  # the keep rate every method's batch invariance is measured at
BATCH_SIZES = (1, 64)  # answers at batch 1 against batch 64 (left padding)


def later_methods(model: str | None = None) -> dict:
    """Every method at the field's budgets (`FIELD_BUDGETS`, keep rate) on test: the field table's
    "keep" rows (read, not re-run: an evaluation is stored once per answer-deciding identity) and
    `LATER_METHODS`. A method that cannot meet a budget has a record with its `error`."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        recs = list(R.field_table(model)["keep"])
        for field in R.FIELD_BUDGETS:
            for name in LATER_METHODS:
                try:
                    rec = evaluations.eval_method(runner, test, name, field, experiment="later",
                                                  progress=False, measure_speed=False)
                except ValueError as e:  # an infeasible budget is reported, not hidden
                    rec = {"method": name, "budget": field, "kind": "keep", "error": str(e)}
                recs.append({**rec, "field": field})
        return {"records": recs}
    return R.cached(R.named("later_methods", model), compute)


def batch_invariance(model: str | None = None) -> dict:
    """Each policy's answers and first-token logits at batch 1 against batch 64 (`BATCH_SIZES`) on the
    first `batch_questions` test questions (`vtr.findings.batch_invariance`): the unpatched model,
    the engine's keep-all hooks ("full") and every method of the tables and `LATER_METHODS` at keep
    rate `BATCH_BUDGET` (P-Sigmoid: its searched plan there). A method that cannot run there is
    listed with its error."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        split = test.subset(size("batch_questions"))
        out = {"unpatched": findings.batch_invariance(runner, split, None, BATCH_SIZES, patched=False),
               "full": findings.batch_invariance(runner, split, None, BATCH_SIZES)}
        errors = {}
        for name in R.TABLE_METHODS + LATER_METHODS:
            try:
                if name == "psigmoid":
                    R.psigmoid(BATCH_BUDGET, model=model)
                policy = policies.policy_for(runner, split, name, BATCH_BUDGET)
            except ValueError as e:
                errors[name] = str(e)
                continue
            out[name] = findings.batch_invariance(runner, split, policy, BATCH_SIZES)
        return {"results": out, "errors": errors, "budget": BATCH_BUDGET}
    return R.cached(R.named("batch_invariance", model), compute)


def attention_profile(model: str | None = None) -> dict:
    """The unpruned model's attention per decoder layer on `profile_questions` val questions
    (`vtr.findings.attention_profile`: the last token's share on the vision tokens, its
    concentration, sinks and their hidden-state norms); the per-question rows are left out."""
    model = model or R.first_model()

    def compute():
        runner, val = runners.get("val", model)
        split = val.subset(size("profile_questions"))
        return {"n": len(split), "layers": findings.attention_profile(runner, split)["layers"]}
    return R.cached(R.named("attention_profile", model), compute)
