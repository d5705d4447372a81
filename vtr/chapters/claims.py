"""The headline table: every claim of the three papers, the paper's number, what each testbed
measured, and a verdict per testbed by a rule written down here.

Verdict rules: "reproduced" when the testbed meets the paper's stated threshold or direction;
"partly" when the direction holds but the size is clearly smaller (given per claim); "not
reproduced" otherwise; "not tested" when the testbed cannot test it (say why).

Accuracy is judged on intervals, not point estimates: a "no accuracy drop" claim is judged on the
upper end of the paired-bootstrap 95% interval of the drop (unpruned minus pruned, the same test
questions), overall and on the families the model answers from the image (`image_families`),
whichever is larger; it is "not tested" when no family uses the image. A "beats" claim needs the
interval's lower end above zero. Speed claims are judged on the decoder FLOPs ratio and on the
median of paired per-round speedups of one interleaved timing run (`runs.methods_speed`), whose
range is shown beside it, so that machine load alone cannot move a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import runs as R
from .tables import span


@dataclass
class ModelVerdict:
    """One claim judged on one model's results: what it measured and the verdict."""
    paper: str
    claim: str
    paper_value: str
    measured: str
    verdict: str
    chapter: str
    model: str = "testbed"


@dataclass
class HeadlineRow:
    """One line of the headline table: a claim and, per model, (what it measured, the verdict)."""
    paper: str
    claim: str
    paper_value: str
    chapter: str
    results: dict = field(default_factory=dict)

    def verdicts(self) -> dict:
        return {m: v for m, (_, v) in self.results.items()}


# What each claim says, and where the book tests it: (paper, claim, the paper's number, chapter).
CLAIM_TEXT = {
    "rank": ('G-Search/P-Sigmoid',
             'Vision-token attention ranking is consistent across layers except the first',
        'Kendall tau >= 0.7 (layers other than layer 1)', 'rank-consistency'),
    "nested": ('G-Search/P-Sigmoid', "Essential tokens of a deeper layer are a subset of a shallower layer's",
        'assumption (no number)', 'rank-consistency'),
    "gsearch": ('G-Search/P-Sigmoid', 'G-Search accelerates > 2x with ~0.2% average accuracy drop',
        '> 2x (up to 2.3x), -0.2 points', 'gsearch'),
    "sshape": ('G-Search/P-Sigmoid', 'The searched keep-rate curve is S-shaped',
        'S-shaped (figure)', 'gsearch'),
    "greedy": ('G-Search/P-Sigmoid', 'Under the assumption, greedy search reaches the optimal reduction',
        'proof (paper)', 'gsearch'),
    "psigmoid": ('G-Search/P-Sigmoid', 'P-Sigmoid + BO beats FastV at 87.5% vision-token reduction',
        '+3.38 points (LLaVA-1.5-7B), +7.69 (InternVL2-8B)', 'psigmoid'),
    "tokenpacker": ('G-Search/P-Sigmoid', 'Speeds up TokenPacker (prompt-agnostic compressor) a further 1.5x',
        '1.5x', 'psigmoid'),
    "longtail": ('CLS similarity', 'CLS-patch similarity is long-tailed: few tokens are highly similar',
        'long tail (qualitative)', 'cls-knee'),
    "cls22": ('CLS similarity', 'Competitive with the original using ~22% of the tokens on average',
        '22% of tokens', 'cls-knee'),
    "stages": ('DyVTE', 'Visual tokens stop contributing once text has absorbed the image (three stages)',
        'exit possible in the middle layers', 'dyvte'),
    "dyvte": ('DyVTE', 'Up to 45.7% less computation without performance drop',
        '45.7% (LLaVA-1.5)', 'dyvte'),
    "generality": ('DyVTE', 'Works with LLaVA, VILA, Eagle and InternVL',
        '4 model families', 'dyvte'),
    "complementary": ('DyVTE', 'Complementary to token-wise methods (FastV + DyVTE)',
        'qualitative', 'dyvte'),
}


def _judged(key: str, measured: str, verdict: str, model: str = "testbed") -> ModelVerdict:
    """The headline row of claim `key` (`CLAIM_TEXT`) with what a testbed measured and the verdict."""
    paper, claim, paper_value, chapter = CLAIM_TEXT[key]
    return ModelVerdict(paper, claim, paper_value, measured, verdict, chapter, model)


def grade(reproduced: bool, partly: bool = False) -> str:
    """The verdict of a rule: "reproduced" when its full condition holds, else "partly" when its
    weaker one does, else "not reproduced"."""
    return "reproduced" if reproduced else "partly" if partly else "not reproduced"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _points(ci: dict) -> str:
    return f"{100 * ci['mean']:+.1f} points ({100 * ci['lo']:+.1f} to {100 * ci['hi']:+.1f})"


def image_families(model: str = "testbed") -> list[str]:
    """Families the testbed answers from the image (`runs.families_from_image`). "No accuracy drop"
    claims are judged on these too, since pruning cannot hurt a family the model answers from its
    prior."""
    return R.families_from_image(R.testbed_accuracy(model))[0]


def judged_drop(full: dict, pruned, model: str = "testbed") -> tuple[float, str]:
    """The judged accuracy drop of `pruned` (a summary record, or a list of them: seeds, whose
    per-question correctness is averaged) against `full`: the upper end of the paired-bootstrap 95%
    interval of accuracy(full) - accuracy(pruned), overall and on the image families, whichever is
    larger; and a text giving both changes (pruned - full) with their intervals."""
    fams = image_families(model)
    overall = R.record_difference(pruned, full)  # pruned - full: negative is a drop
    if not fams:
        return -overall["lo"], f"{_points(overall)} overall (no family uses the image)"
    on_image = R.record_difference(pruned, full, families=fams)
    judged = max(-overall["lo"], -on_image["lo"])
    if _points(on_image) == _points(overall):  # one interval, said once (e.g. every family uses the image)
        return judged, f"{_points(overall)} overall and on the families answered from the image"
    return judged, f"{_points(overall)} overall, {_points(on_image)} on the families answered from the image"


def _rec(method, budget, records):
    for r in records:
        if r.get("method") == method and r.get("budget") == budget and "overall" in r:
            return r
    return None


def _speed(model: str, name: str, budget="searched") -> dict | None:
    """The interleaved timing of `name` (`runs.methods_speed`), or None if it was not timed."""
    rows = R.methods_speed(model)["budgets"].get(str(budget), [])
    return next((r for r in rows if r["name"] == name), None)


def rank_claim(model: str = "testbed") -> ModelVerdict:
    rc = R.rank_consistency(model)
    tau = R.tau_excluding_first(rc, "last")
    tau_tm = R.tau_excluding_first(rc, "text_mean")
    first = float(np.mean(np.array(rc["last"]["tau_mean"])[0, 1:]))
    measured = (f"mean tau over layer pairs excluding layer 0: {tau:.2f} (last token), {tau_tm:.2f} (text "
                f"mean); layer 0 vs others: {first:.2f}")
    return _judged("rank", measured, grade(tau >= 0.7, tau >= 0.4 and first < tau), model)


def nested_claim(model: str = "testbed") -> ModelVerdict:
    rc = R.rank_consistency(model)
    nested = float(np.mean(rc["last"]["nested"][1:]))
    verdict = grade(nested >= 0.8, nested >= 0.5)
    return _judged("nested", f"share of layer l+1's top-{rc['last']['overlap_k']} inside layer l's (l >= 1): "
                          f"{_pct(nested)}", verdict, model)


def gsearch_claim(model: str = "testbed") -> ModelVerdict:
    """> 2x with ~0.2 points: reproduced when the FLOPs-predicted and the measured (median of the
    interleaved rounds) prefill speedups are both >= 2 and the judged drop <= 1 point; partly when
    both exceed 1.2 and the judged drop <= 2 points."""
    g = R.gsearch(model)
    full, test = g["full"], g["last"]["test"]
    drop, said = judged_drop(full, test, model)
    predicted = 1 / test["flops_ratio"]
    t = _speed(model, "gsearch")
    sp = t["speedup"] if t else float("nan")
    ranged = t is not None and "-" in span(*t["speedup_range"])  # one round has no range to show
    spread = f" (range {span(*t['speedup_range'])} over rounds)" if ranged else ""
    verdict = grade(min(predicted, sp) >= 2.0 and drop <= 0.01, min(predicted, sp) > 1.2 and drop <= 0.02)
    if not image_families(model):
        verdict = "not tested"
    return _judged("gsearch", f"decoder FLOPs {_pct(test['flops_ratio'])} of unpruned ({predicted:.2f}x "
                f"predicted), measured prefill speedup {sp:.2f}x{spread}; test accuracy "
                f"{_pct(test['overall'])} vs {_pct(full['overall'])} unpruned: {said}", verdict, model)


def sshape_claim(model: str = "testbed") -> ModelVerdict:
    """S-shaped if a sigmoid fits the searched curve at most half as badly as the best straight
    line and its midpoint lies inside the depth range (0.1 < a < 0.9)."""
    from ..plan import Plan
    from ..search.psigmoid import fit_to_plan, psigmoid_rates

    s = R.gsearch(model)["last"]["search"]
    plan = Plan(tuple(s["plan"]), s["n_vision"])
    rates = np.array(plan.rates)
    x = np.linspace(0, 1, len(rates))
    params = fit_to_plan(plan)
    sig = np.array(psigmoid_rates(params, len(rates)))
    line = np.polyval(np.polyfit(x[1:], rates[1:], 1), x[1:])
    rmse_sig = float(np.sqrt(np.mean((sig[1:] - rates[1:]) ** 2)))
    rmse_line = float(np.sqrt(np.mean((line - rates[1:]) ** 2)))
    inside = 0.1 < params.a < 0.9
    verdict = grade(inside and rmse_sig <= 0.5 * rmse_line, rmse_sig < rmse_line)
    return _judged("sshape", f"sigmoid fit RMSE {rmse_sig:.3f} vs straight line {rmse_line:.3f}; "
                          f"midpoint at depth {params.a:.2f}", verdict, model)


def greedy_claim(model: str = "testbed", instances: int = 300, seed: int = 0) -> ModelVerdict:
    """Greedy optimality under the assumption, checked against brute force on random synthetic
    scorers that satisfy it (per-layer needs that do not increase with depth). It involves no
    model: both testbeds' columns show the same check."""
    import itertools

    from ..plan import Plan
    from ..search.gsearch import gsearch

    rng = np.random.default_rng(seed)
    optimal = 0
    for _ in range(instances):
        L, N = int(rng.integers(2, 5)), int(rng.integers(1, 7))
        need = np.sort(rng.integers(0, N + 1, size=L))[::-1]
        need[0] = N

        def score(p, need=need):
            return float(all(k >= n for k, n in zip(p.keep, need)))

        got = gsearch(score, L, N, 0.0, start_layer=1, progress=False).plan
        best = min((c for c in itertools.product(range(N + 1), repeat=L - 1)
                    if list(c) == sorted(c, reverse=True) and c[0] <= N and score(Plan((N,) + c, N)) >= 1.0),
                   key=sum)
        optimal += sum(got.keep[1:]) == sum(best)
    share = optimal / instances
    return _judged("greedy", f"optimal on {optimal} of {instances} random synthetic problems "
                          f"(brute force, L <= 4, N <= 6; no model involved)", grade(share == 1.0), model)


def psigmoid_claim(model: str = "testbed") -> ModelVerdict:
    """Beats FastV at 87.5% reduction (mean keep rate 0.125): reproduced when the paired interval
    of the difference lies above zero and the difference is >= 2 points; partly when the interval
    lies above zero; "not tested" when both methods keep the same tokens in every layer."""
    recs = R.methods_table(model)
    p, f = _rec("psigmoid", 0.125, recs), _rec("fastv", 0.125, recs)
    if p is None or f is None:
        return _judged("psigmoid", "missing result", "not tested", model)
    ci = R.paired_difference("table", "psigmoid", "fastv", 0.125, model=model)
    p25, f25 = _rec("psigmoid", 0.25, recs), _rec("fastv", 0.25, recs)
    at25 = ("; at 75% reduction: "
            f"{_points(R.paired_difference('table', 'psigmoid', 'fastv', 0.25, model=model))}"
            if p25 is not None and f25 is not None else "")
    if np.allclose(p["vision_per_layer"], f["vision_per_layer"]):
        # With layer 0 kept whole, a mean keep rate of 1/L leaves nothing for later layers: both
        # methods are forced to the same plan, so the claim cannot be tested at this depth.
        return _judged("psigmoid", f"identical plans at this budget on a {R.n_layers(model)}-layer model "
                    "(layer 0 alone spends it)" + at25, "not tested", model)
    verdict = grade(ci["lo"] > 0 and ci["mean"] >= 0.02, ci["lo"] > 0)
    measured = f"{_pct(p['overall'])} vs {_pct(f['overall'])}: {_points(ci)} (paired bootstrap)" + at25
    return _judged("psigmoid", measured, verdict, model)


def tokenpacker_claim(model: str = "testbed") -> ModelVerdict:
    has = "the testbed has none" if R.is_testbed() else "none of this profile's models has one"
    return _judged("tokenpacker", f"TokenPacker is a trained projector; {has}", "not tested", model)


def _cls_unsupported(key: str, model: str) -> ModelVerdict | None:
    """The "not tested" row of a CLS-similarity claim on a model `runs.cls_knee` cannot measure."""
    reason = R.cls_knee(model).get("unsupported")
    return None if reason is None else _judged(key, f"cannot run on {model}: {reason}", "not tested", model)


def longtail_claim(model: str = "testbed") -> ModelVerdict:
    if (row := _cls_unsupported("longtail", model)) is not None:
        return row
    k = R.cls_knee(model)
    knees = np.array(k["knees"]["kneedle"])
    n = len(k["mean_curve"])
    share = float(np.mean(knees) / n)
    curve = np.array(k["mean_curve"])
    top10 = float((curve[: max(1, n // 10)].mean() - curve.mean()) / (curve.std() + 1e-9))
    measured = (f"knee (Kneedle) at {np.mean(knees):.1f} of {n} tokens on average ({_pct(share)}) over "
                f"{len(knees)} val images; top-10% mean is {top10:.1f} std above the mean")
    return _judged("longtail", measured, grade(share <= 0.3, share <= 0.5), model)


def cls22_claim(model: str = "testbed") -> ModelVerdict:
    """Competitive at ~22%: reproduced when the mean keep rate is <= 30% and the judged drop <= 1
    point; partly at <= 50% and <= 5 points."""
    if (row := _cls_unsupported("cls22", model)) is not None:
        return row
    k = R.cls_knee(model)
    two, full = k["two_stage"], R.gsearch(model)["full"]
    drop, said = judged_drop(full, two, model)
    verdict = grade(two["keep_rate"] <= 0.3 and drop <= 0.01, two["keep_rate"] <= 0.5 and drop <= 0.05)
    if not image_families(model):
        verdict = "not tested"
    return _judged("cls22", f"mean keep rate {_pct(two['keep_rate'])} on test, accuracy "
                f"{_pct(two['overall'])} vs {_pct(full['overall'])} unpruned: {said}", verdict, model)


def stages_claim(model: str = "testbed") -> ModelVerdict:
    rows = R.three_stages(model)
    sweep = R.vtw_sweep(model)["accuracy"]
    L = len(rows)
    full = sweep[str(L)] if str(L) in sweep else sweep[L]
    acc = [sweep[str(layer)] if str(layer) in sweep else sweep[layer] for layer in range(L + 1)]
    exit_ok = next((layer for layer in range(L + 1) if acc[layer] >= full - 0.01), L)
    verdict = grade(exit_ok <= L // 2, exit_ok < L)
    if not image_families(model) or acc[0] >= full - 0.01:  # nothing to lose: the test says nothing
        verdict = "not tested"
    return _judged("stages", f"removing all vision tokens before layer {exit_ok} of {L} costs <= 1 point on "
                f"val (before layer 1: {_pct(acc[1])}, unpruned: {_pct(full)})", verdict, model)


def dyvte_claim(model: str = "testbed") -> ModelVerdict:
    """Up to 45.7% less computation without a drop: reproduced when the decoder FLOPs saved (mean
    over router seeds) are >= 40% and the judged drop of the seed-averaged answers <= 1 point;
    partly at >= 20% and <= 2 points."""
    d = R.dyvte(model)
    seeds = list(d["seeds"].values())
    saved = float(np.mean([1 - s["test"]["flops_ratio"] for s in seeds]))
    drop, said = judged_drop(d["full"], [s["test"] for s in seeds], model)
    verdict = grade(saved >= 0.4 and drop <= 0.01, saved >= 0.2 and drop <= 0.02)
    if not image_families(model):
        verdict = "not tested"
    over = "one router seed" if len(seeds) == 1 else f"mean over {len(seeds)} router seeds"
    answers = "accuracy" if len(seeds) == 1 else "accuracy averaged over seeds"
    return _judged("dyvte", f"{_pct(saved)} less decoder prefill FLOPs on test ({over}); {answers}: {said}",
                   verdict, model)


def generality_claim(model: str = "testbed") -> ModelVerdict:
    if not R.is_testbed():
        return _judged("generality", "needs routers trained on LLaVA, VILA, Eagle and InternVL; this "
                    "profile's DyVTE rows show its own models", "not tested", model)
    return _judged("generality", "the testbed is one LLaVA model; the engine runs DyVTE-style exits on tiny "
                "LLaVA, LLaVA-NeXT, Qwen2-VL and InternVL configs in the tests, but no trained routers exist "
                "for them here", "not tested",
                model)


def complementary_claim(model: str = "testbed") -> ModelVerdict:
    """FastV + DyVTE: reproduced when it costs fewer FLOPs than FastV alone at 0.5 with a judged
    drop (against FastV alone) <= 1 point."""
    d = R.dyvte(model)
    fd, f = d["fastv_dyvte"], _rec("fastv", 0.5, R.methods_table(model))
    if f is None:
        return _judged("complementary", "missing", "not tested", model)
    drop, said = judged_drop(f, fd, model)
    verdict = grade(fd["flops_ratio"] < f["flops_ratio"] and drop <= 0.01)
    if not image_families(model):
        verdict = "not tested"
    return _judged("complementary", f"FastV(0.5)+DyVTE: FLOPs {_pct(fd['flops_ratio'])}, accuracy "
                f"{_pct(fd['overall'])}; FastV(0.5) alone: {_pct(f['flops_ratio'])}, {_pct(f['overall'])}; "
                f"change: {said}", verdict, model)


CLAIMS = (rank_claim, nested_claim, greedy_claim, gsearch_claim, sshape_claim, psigmoid_claim,
          tokenpacker_claim, longtail_claim, cls22_claim, stages_claim, dyvte_claim, generality_claim,
          complementary_claim)
# claims that involve no testbed-specific measurement: shown once, for every testbed
MODEL_FREE = (greedy_claim, tokenpacker_claim, generality_claim)


def headline(models=None, later: bool = True) -> list[HeadlineRow]:
    """Every claim, measured and judged on each model of `models` (default: the profile's): the three
    papers' (`CLAIMS`), then, with `later`, the findings of later benchmark studies
    (`benchmark_claims.later_claims`, chapter `later-benchmarks`)."""
    models = models or R.models()
    out = []
    for check in CLAIMS:
        if check in MODEL_FREE:
            once = check(models[0])
            rows = {m: once for m in models}
        else:
            rows = {m: check(m) for m in models}
        first = rows[models[0]]
        out.append(HeadlineRow(first.paper, first.claim, first.paper_value, first.chapter,
                         {m: (r.measured, r.verdict) for m, r in rows.items()}))
    if later:
        from . import benchmark_claims

        judged = {m: benchmark_claims.later_claims(m) for m in models}
        for i, first in enumerate(judged[models[0]]):
            out.append(HeadlineRow(first.paper, first.claim, first.paper_value, first.chapter,
                                   {m: (judged[m][i].measured, judged[m][i].verdict) for m in models}))
    return out


def depth_changes(table: list[HeadlineRow], models=None) -> list[HeadlineRow]:
    """The claims whose verdict differs between the models of `models` (default: the profile's)."""
    models = models or R.models()
    return [c for c in table if len({c.results[m][1] for m in models}) > 1]


def verdicts_md(*checks, models=None) -> str:
    """The headline rows of `checks` (claim functions) as a MyST list, for a chapter to show beside
    its own tables: the same functions, hence the same numbers and verdicts, as the headline."""
    models = models or R.models()
    lines = []
    for check in checks:
        if check in MODEL_FREE:
            row = check(models[0])
            lines.append(f"- *{row.claim}*: {row.measured}: **{row.verdict}**")
            continue
        parts = []
        for m in models:
            row = check(m)
            parts.append(f"{R.n_layers(m)} layers: {row.measured}: **{row.verdict}**")
        lines.append(f"- *{row.claim}*: " + "; ".join(parts))
    return "\n".join(lines)
