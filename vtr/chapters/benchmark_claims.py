"""What later benchmark studies of vision-token reduction found, judged on measured results by
rules written down here, in the headline table's style (`vtr.chapters.claims`): each rule takes
what was measured (summary records, per-question correctness, `vtr.findings` results) and returns
a `claims.ModelVerdict` with the measurement and its verdict.

Sources:
- UniPruneBench (Peng et al., 2025): random pruning is a strong baseline (on LLaVA-1.5-7B, 6 of 8
  methods were worse than random at 66.7% and 77.8% pruning); no method wins everywhere; OCR/text
  tasks are the most fragile.
- VTC-Bench (Liao et al., 2025): plain downsampling beats many advanced reduction methods at the
  same token count.
- lmms-eval#236 (LLaVA-1.5-7B on ScienceQA: 69.56 at batch 1, 58.70 at batch 2) and LLaVA#1928
  (padding flips MME answers): answers depend on the batch.

Accuracy comparisons use the paired-bootstrap 95% interval of a difference on the same questions
(`vtr.analysis.paired_bootstrap`): "better" means the interval lies above zero, "worse" below, "not
better" that its lower end is at or below zero. Correctness vectors are keyed (method, budget) and
hold the same questions in the same order.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..analysis import paired_bootstrap
from ..catalogue import display
from ..findings import equivalent_tokens
from .claims import ModelVerdict, grade

CHAPTER = "later-benchmarks"

# methods that rank vision tokens by attention (the catalogue's `scored_from`): decoder-side by the
# last token's or the text's attention, encoder-side by the CLS token's
ATTENTION_METHODS = ("fastv", "pdrop", "sparsevlm", "visionzip", "prumerge", "prumerge_plus")
# published methods that choose or merge tokens by a score of their own (what VTC-Bench calls advanced)
ADVANCED_METHODS = ATTENTION_METHODS + ("dart", "tome", "divprune")

CLAIM_TEXT = {
    "random": ("UniPruneBench (Peng et al., 2025)",
               "Random pruning is a strong baseline: most attention-based methods are not better than random",
               "LLaVA-1.5-7B: 6 of 8 methods worse than random at 66.7% and 77.8% pruning"),
    "winner": ("UniPruneBench (Peng et al., 2025)", "No method wins everywhere",
               "qualitative (across models, tasks and ratios)"),
    "downsample": ("VTC-Bench (Liao et al., 2025)",
                   "Plain downsampling beats many advanced reduction methods at the same token count",
                   "qualitative (many methods)"),
    "text": ("UniPruneBench (Peng et al., 2025)", "OCR/text tasks are the most fragile under token reduction",
             "qualitative"),
    "batch": ("lmms-eval#236, LLaVA#1928", "Answers change with the batch size and its padding",
              "LLaVA-1.5-7B ScienceQA: 69.56 at batch 1, 58.70 at batch 2"),
}


def _judged(key: str, measured: str, verdict: str, model: str) -> ModelVerdict:
    """Claim `key` (`CLAIM_TEXT`) judged on one model: what it measured and the verdict."""
    paper, claim, paper_value = CLAIM_TEXT[key]
    return ModelVerdict(paper, claim, paper_value, measured, verdict, CHAPTER, model)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _budget(b) -> str:
    return f"keep {_pct(b)}" if isinstance(b, (int, float)) else str(b)


def _budgets(correct: Mapping) -> list:
    return sorted({b for _, b in correct}, key=lambda b: (-b if isinstance(b, (int, float)) else 0, str(b)))


def random_baseline_claim(correct: Mapping[tuple[str, object], Sequence[float]],
                          methods: Sequence[str] = ATTENTION_METHODS, random: str = "random",
                          model: str = "testbed", n_boot: int = 1000) -> ModelVerdict:
    """Random is a strong baseline. At each budget that has `random` and at least one of `methods`,
    each method is compared with random on the same questions (paired bootstrap of method - random):
    "not better" when the interval's lower end is <= 0, "worse" when its upper end is < 0.
    Reproduced when, at every such budget, at least half of the methods are not better than random;
    partly when that holds at some budget; "not tested" when no budget has random and a method.
    The measurement also counts the methods worse than random (the paper's count); on a small test
    set wide intervals make "not better" easy, so their widths are shown."""
    per_budget, parts = [], []
    for b in _budgets(correct):
        if (random, b) not in correct:
            continue
        here = [m for m in methods if (m, b) in correct]
        if not here:
            continue
        cis = {m: paired_bootstrap(correct[(m, b)], correct[(random, b)], n_boot=n_boot) for m in here}
        not_better = [m for m in here if cis[m]["lo"] <= 0]
        worse = [m for m in here if cis[m]["hi"] < 0]
        per_budget.append(2 * len(not_better) >= len(here))
        width = float(np.mean([c["hi"] - c["lo"] for c in cis.values()]))
        parts.append(f"{_budget(b)}: {len(not_better)} of {len(here)} not better than random, "
                     f"{len(worse)} worse (mean interval width {100 * width:.1f} points)")
    if not per_budget:
        return _judged("random", "no budget with random and an attention-based method", "not tested", model)
    return _judged("random", "; ".join(parts), grade(all(per_budget), any(per_budget)), model)


def no_winner_claim(records: Sequence[dict], methods: Sequence[str] | None = None,
                    model: str = "testbed") -> ModelVerdict:
    """No method wins everywhere. A cell is a (budget, family) pair of the summary records of
    `methods` (default: every method with a record but the unpruned "full"); its winners are the
    methods with the highest family accuracy there (ties all win). Reproduced when no method wins
    every cell; "not tested" with fewer than two methods or no cell."""
    recs = [r for r in records if "families" in r and r.get("families") and r.get("method") != "full"
            and (methods is None or r["method"] in methods)]
    names = sorted({r["method"] for r in recs})
    cells: dict = {}
    for r in recs:
        for fam, acc in r["families"].items():
            cells.setdefault((r["budget"], fam), {})[r["method"]] = acc
    cells = {c: accs for c, accs in cells.items() if len(accs) >= 2}
    if len(names) < 2 or not cells:
        return _judged("winner", "fewer than two methods to compare", "not tested", model)
    wins = {m: 0 for m in names}
    for accs in cells.values():
        best = max(accs.values())
        for m, acc in accs.items():
            wins[m] += acc == best
    top = max(wins, key=wins.get)
    return _judged("winner", f"{len(cells)} (budget, family) cells; most won by {display(top)}: {wins[top]} "
                f"of {len(cells)}", grade(wins[top] < len(cells)), model)


def downsampling_claim(records: Sequence[dict], correct: Mapping[tuple[str, object], Sequence[float]],
                       methods: Sequence[str] = ADVANCED_METHODS, simple: str = "downsample",
                       tolerance: float = 0.05, model: str = "testbed", n_boot: int = 1000) -> ModelVerdict:
    """Downsampling beats advanced methods at the same token count. A pair is `simple` (downsampling)
    and one of `methods` evaluated at the same budget, where the method spends at least as many
    equivalent tokens (`vtr.findings.equivalent_tokens` of their records) as `simple`, within
    `tolerance` (relative): a method that spent fewer tokens is not at the same count and is left
    out. Per pair, the paired bootstrap of simple - method: "beats" when the interval lies above
    zero, "not worse" when its upper end is >= 0. Reproduced when `simple` beats the method in at
    least half of the pairs; partly when it is not worse in at least half; "not tested" without
    a pair."""
    rec = {(r["method"], r["budget"]): r for r in records if "vision_per_layer" in r and "method" in r}
    pairs, left_out = [], []
    for (name, b), r in rec.items():
        if name not in methods or any((m, b) not in rec or (m, b) not in correct for m in (simple, name)):
            continue
        e_simple, e_method = equivalent_tokens(rec[(simple, b)]), equivalent_tokens(r)
        if e_method < e_simple * (1 - tolerance):
            left_out.append(f"{display(name)} at {_budget(b)}")
            continue
        pairs.append(paired_bootstrap(correct[(simple, b)], correct[(name, b)], n_boot=n_boot))
    if not pairs:
        return _judged("downsample", f"no method at {display(simple)}'s token count", "not tested", model)
    beats = sum(ci["lo"] > 0 for ci in pairs)
    not_worse = sum(ci["hi"] >= 0 for ci in pairs)
    skipped = f"; left out (fewer equivalent tokens): {', '.join(left_out)}" if left_out else ""
    measured = (f"{display(simple)} beats {beats} and is not worse than {not_worse} of {len(pairs)} "
                f"(method, budget) pairs at equal equivalent tokens{skipped}")
    return _judged("downsample", measured, grade(2 * beats >= len(pairs), 2 * not_worse >= len(pairs)), model)


def fragile_family_claim(full: dict, records: Sequence[dict], family: str = "text",
                         families: Sequence[str] | None = None, model: str = "testbed") -> ModelVerdict:
    """Text (the testbed's OCR analogue) is the most fragile family. Per budget, each family's drop
    is the unpruned record's accuracy minus the pruned records' mean accuracy on it, over the
    `records` at that budget (any methods). Families are compared among `families` (default: all of
    `full`'s; pass those the model answers from the image, since a family answered from the prior
    cannot drop). Reproduced when `family` drops the most at every budget; partly when at some
    budget; "not tested" when `family` is not among the compared families. Families are different
    questions, so the ranking is of point estimates: the margin to the runner-up is shown."""
    fams = [f for f in (families if families is not None else full["families"]) if f in full["families"]]
    if family not in fams or len(fams) < 2:
        return _judged("text", f"no {family} family among the families compared", "not tested", model)
    pruned = [r for r in records if r.get("families") and r.get("method") != "full"
              and isinstance(r.get("budget"), (int, float))]
    budgets = sorted({r["budget"] for r in pruned}, reverse=True)
    firsts, parts = [], []
    for b in budgets:
        rs = [r for r in pruned if r["budget"] == b]
        drop = {f: full["families"][f] - float(np.mean([r["families"][f] for r in rs])) for f in fams}
        order = sorted(drop, key=drop.get, reverse=True)
        firsts.append(order[0] == family)
        runner_up = order[1] if order[0] == family else order[0]
        # printed as changes (pruned - unpruned, negative a drop), the book's sign
        parts.append(f"{_budget(b)}: {family} {-100 * drop[family]:+.1f} points (drop rank "
                     f"{order.index(family) + 1} of {len(fams)}; {runner_up} {-100 * drop[runner_up]:+.1f})")
    if not budgets:
        return _judged("text", "no pruned records", "not tested", model)
    return _judged("text", "; ".join(parts), grade(all(firsts), any(firsts)), model)


def batch_claim(results: Mapping[str, dict], tolerance: float = 1e-3, model: str = "testbed") -> ModelVerdict:
    """Answers change with the batch. `results`: name -> `vtr.findings.batch_invariance` output.
    Reproduced when any answer of any policy changes between batch sizes; partly when none does
    but some first-token logit moves by more than `tolerance`; "not reproduced" when no answer
    changes and every logit stays within it; "not tested" without results."""
    if not results:
        return _judged("batch", "no batch comparison run", "not tested", model)
    changed = {name: sum(r["differing"].values()) for name, r in results.items()}
    moved = max(max(r["max_logit_diff"].values(), default=0.0) for r in results.values())
    first = next(iter(results.values()))
    sizes = " vs ".join(str(s) for s in first["batch_sizes"])
    names = ", ".join(display(n) for n in results)
    measured = (f"{sum(changed.values())} changed answers over {len(results)} policies ({names}) on "
                f"{first['n']} questions at batch {sizes}; largest first-token logit difference {moved:.2g}")
    return _judged("batch", measured, grade(any(changed.values()), moved > tolerance), model)


# ---------------------------------------------------------------------------- on the book's results
def measured(model: str) -> dict:
    """What the rules read for `model`, from the load-or-compute results of `vtr.chapters.runs`:
    "records" (every method at the field's keep rates, the "keep" rows of `runs.field_table`, the
    unpruned "full" one included), "correct" ((method, budget) -> per-question correctness on
    test), "full", "families" (those the model answers from the image) and "batch"
    (`runs.batch_invariance` results)."""
    from . import claims
    from . import runs as R

    recs = [r for r in R.field_table(model)["keep"] if "error" not in r]
    full = next(r for r in recs if r["method"] == "full")
    correct = {(r["method"], r["field"]): R.correct(r) for r in recs if "field" in r}
    return {"records": recs, "correct": correct, "full": full, "families": claims.image_families(model),
            "batch": R.batch_invariance(model)["results"]}


def later_claims(model: str, data: dict | None = None) -> list[ModelVerdict]:
    """Every rule of this module judged on `model` (`measured(model)` unless `data` is given), in
    `CLAIM_TEXT`'s order."""
    d = data or measured(model)
    pruned = [r for r in d["records"] if "field" in r]
    return [random_baseline_claim(d["correct"], model=model),
            no_winner_claim(pruned, model=model),
            downsampling_claim(pruned, d["correct"], model=model),
            fragile_family_claim(d["full"], pruned, families=d["families"], model=model),
            batch_claim(d["batch"], model=model)]
