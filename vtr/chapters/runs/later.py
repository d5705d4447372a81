"""The book's results on what later benchmark studies found (chapter `later-benchmarks`; part of
`vtr.chapters.runs`, which re-exports them): the batch invariance of every policy, and the unpruned
model's attention profile (chapter 3). The methods those studies added (`LATER_METHODS`) are rows
of the methods and field tables (`runs.TABLE_METHODS`). Helpers and other results are reached
through `runs`.
"""
from __future__ import annotations

from ... import findings
from ...experiments import policies, runners
from ...experiments.sizes import size
from .. import runs as R

# the methods the later benchmarks (VTC-Bench, UniPruneBench) and llmc compare beyond the book's set
LATER_METHODS = ("downsample", "pool", "dart", "divprune")
BATCH_BUDGET = 0.25  # the keep rate every method's batch invariance is measured at
BATCH_SIZES = (1, 64)  # answers at batch 1 against batch 64 (left padding)


def batch_invariance(model: str | None = None) -> dict:
    """Each policy's answers and first-token logits at batch 1 against batch 64 (`BATCH_SIZES`) on the
    first `batch_questions` test questions (`vtr.findings.batch_invariance`): the unpatched model,
    the engine's keep-all hooks ("full") and every method of the tables at keep rate `BATCH_BUDGET`
    (P-Sigmoid: its searched plan there). A method that cannot run there is listed with its error."""
    model = model or R.first_model()

    def compute():
        runner, test = runners.get("test", model)
        split = test.subset(size("batch_questions"))
        out = {"unpatched": findings.batch_invariance(runner, split, None, BATCH_SIZES, patched=False),
               "full": findings.batch_invariance(runner, split, None, BATCH_SIZES)}
        errors = {}
        for name in R.TABLE_METHODS:
            try:  # a plan the budget does not allow, or a model the method cannot run on: say why
                if name == "psigmoid":
                    R.psigmoid(BATCH_BUDGET, model=model)
                policy = policies.policy_for(runner, split, name, BATCH_BUDGET)
                out[name] = findings.batch_invariance(runner, split, policy, BATCH_SIZES)
            except ValueError as e:
                errors[name] = str(e)
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
