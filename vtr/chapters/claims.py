"""The headline table: every claim of the three papers, the paper's number, what the testbed
measured, and a verdict by a rule written down here (not chosen after seeing the number).

Verdict rules: "reproduced" when the testbed meets the paper's stated threshold or direction;
"partly" when the direction holds but the size is clearly smaller (given per claim); "not
reproduced" otherwise; "not tested" when the testbed cannot test it (say why). "No accuracy
drop" is judged on the overall accuracy and on the families the model answers from the image
(`image_families`), and is "not tested" when no family uses the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import runs as R


@dataclass
class Row:
    paper: str
    claim: str
    paper_value: str
    measured: str
    verdict: str
    chapter: str


# What each claim says, and where the book tests it: (paper, claim, the paper's number, chapter).
CLAIM_TEXT = {
    "rank": ('G-Search/P-Sigmoid', 'Vision-token attention ranking is consistent across layers except the first',
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


def _row(key: str, measured: str, verdict: str) -> Row:
    """The headline row of claim `key` (`CLAIM_TEXT`) with what the testbed measured and the verdict."""
    paper, claim, paper_value, chapter = CLAIM_TEXT[key]
    return Row(paper, claim, paper_value, measured, verdict, chapter)


def grade(reproduced: bool, partly: bool = False) -> str:
    """The verdict of a rule: "reproduced" when its full condition holds, else "partly" when its
    weaker one does, else "not reproduced"."""
    return "reproduced" if reproduced else "partly" if partly else "not reproduced"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def image_families() -> list[str]:
    """Families the testbed answers from the image (`runs.families_from_image`). "No accuracy drop"
    claims are judged on these too, since pruning cannot hurt a family the model answers from its
    prior."""
    return R.families_from_image(R.testbed_accuracy())[0]


def worst_drop(full: dict, pruned: dict) -> tuple[float, str]:
    """The larger of the overall drop and the drop on the image families; and a text saying both."""
    fams = image_families()
    drop = full["overall"] - pruned["overall"]
    if not fams:
        return drop, f"{-100 * drop:+.1f} points overall (no family uses the image)"
    f_full = float(np.mean([full["families"][f] for f in fams]))
    f_pr = float(np.mean([pruned["families"][f] for f in fams]))
    return max(drop, f_full - f_pr), (f"{-100 * drop:+.1f} points overall, {-100 * (f_full - f_pr):+.1f} on the "
                                     f"families answered from the image ({', '.join(fams)})")


def _rec(method, budget, records):
    for r in records:
        if r.get("method") == method and r.get("budget") == budget and "overall" in r:
            return r
    return None


def rank_claim() -> Row:
    rc = R.rank_consistency()
    tau = R.tau_excluding_first(rc, "last")
    tau_tm = R.tau_excluding_first(rc, "text_mean")
    first = float(np.mean(np.array(rc["last"]["tau_mean"])[0, 1:]))
    measured = (f"mean tau over layer pairs excluding layer 0: {tau:.2f} (last token), {tau_tm:.2f} (text mean); "
                f"layer 0 vs others: {first:.2f}")
    return _row("rank", measured, grade(tau >= 0.7, tau >= 0.4 and first < tau))


def nested_claim() -> Row:
    rc = R.rank_consistency()
    nested = float(np.mean(rc["last"]["nested"][1:]))
    verdict = grade(nested >= 0.8, nested >= 0.5)
    return _row("nested", f"share of layer l+1's top-{rc['last']['overlap_k']} inside layer l's (l >= 1): "
                          f"{_pct(nested)}", verdict)


def gsearch_claim() -> Row:
    g = R.gsearch()
    full, test, search = g["full"], g["last"]["test"], g["last"]["search"]
    drop, said = worst_drop(full, test)
    sp = test.get("speedup", float("nan"))
    verdict = grade(sp >= 2.0 and drop <= 0.01, sp > 1.2 and drop <= 0.02)
    if not image_families():
        verdict = "not tested"
    return _row("gsearch", f"prefill speedup {sp:.2f}x (decoder FLOPs {_pct(test['flops_ratio'])} of unpruned, test), "
                f"test accuracy {_pct(test['overall'])} vs {_pct(full['overall'])} unpruned ({said})", verdict)


def sshape_claim() -> Row:
    """S-shaped if a sigmoid fits the searched curve at most half as badly as the best straight
    line and its midpoint lies inside the depth range (0.1 < a < 0.9)."""
    from ..plan import Plan
    from ..search.psigmoid import fit_to_plan, psigmoid_rates

    s = R.gsearch()["last"]["search"]
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
    return _row("sshape", f"sigmoid fit RMSE {rmse_sig:.3f} vs straight line {rmse_line:.3f}; "
                          f"midpoint at depth {params.a:.2f}", verdict)


def greedy_claim(instances: int = 300, seed: int = 0) -> Row:
    """Greedy optimality under the assumption, checked against brute force on random synthetic
    scorers that satisfy it (per-layer needs that do not increase with depth)."""
    import itertools

    from ..plan import Plan
    from ..search.gsearch import gsearch

    rng = np.random.default_rng(seed)
    optimal = 0
    for _ in range(instances):
        L, N = int(rng.integers(2, 5)), int(rng.integers(1, 7))
        need = np.sort(rng.integers(0, N + 1, size=L))[::-1]
        need[0] = N
        score = lambda p, need=need: float(all(k >= n for k, n in zip(p.keep, need)))  # noqa: E731
        got = gsearch(score, L, N, 0.0, start_layer=1, progress=False).plan
        best = min((c for c in itertools.product(range(N + 1), repeat=L - 1)
                    if list(c) == sorted(c, reverse=True) and c[0] <= N and score(Plan((N,) + c, N)) >= 1.0),
                   key=sum)
        optimal += sum(got.keep[1:]) == sum(best)
    share = optimal / instances
    return _row("greedy", f"optimal on {optimal} of {instances} random synthetic problems "
                          f"(brute force, L <= 4, N <= 6)", grade(share == 1.0))


def psigmoid_claim() -> Row:
    recs = R.methods_table()
    p, f = _rec("psigmoid", 0.125, recs), _rec("fastv", 0.125, recs)
    if p is None or f is None:
        return _row("psigmoid", "missing result", "not tested")
    diff = p["overall"] - f["overall"]
    lo_hi = R.paired_difference("table", "psigmoid", "fastv", 0.125)
    p25, f25 = _rec("psigmoid", 0.25, recs), _rec("fastv", 0.25, recs)
    at25 = (f"; at 75% reduction: {100 * (p25['overall'] - f25['overall']):+.1f} points"
            if p25 is not None and f25 is not None else "")
    if np.allclose(p["vision_per_layer"], f["vision_per_layer"]):
        # With layer 0 kept whole, a mean keep rate of 1/L leaves nothing for later layers: both
        # methods are forced to the same plan, so the claim cannot be tested at this depth.
        return _row("psigmoid", "identical plans at this budget on an 8-layer model (layer 0 alone spends it)"
                    + at25, "not tested")
    verdict = grade(lo_hi["lo"] > 0 and diff >= 0.02, lo_hi["lo"] > 0)
    return _row("psigmoid", f"{100 * diff:+.1f} points (95% CI {100 * lo_hi['lo']:+.1f} to {100 * lo_hi['hi']:+.1f}, "
                f"paired bootstrap){at25}", verdict)


def tokenpacker_claim() -> Row:
    return _row("tokenpacker", "TokenPacker is a trained projector; the testbed has none", "not tested")


def longtail_claim() -> Row:
    k = R.cls_knee()
    knees = np.array(k["knees"]["kneedle"])
    n = len(k["mean_curve"])
    share = float(np.mean(knees) / n)
    curve = np.array(k["mean_curve"])
    top10 = float((curve[: max(1, n // 10)].mean() - curve.mean()) / (curve.std() + 1e-9))
    measured = (f"knee (Kneedle) at {np.mean(knees):.1f} of {n} tokens on average ({_pct(share)}) over "
                f"{len(knees)} val images; top-10% mean is {top10:.1f} std above the mean")
    return _row("longtail", measured, grade(share <= 0.3, share <= 0.5))


def cls22_claim() -> Row:
    k = R.cls_knee()
    two, full = k["two_stage"], R.gsearch()["full"]
    drop, said = worst_drop(full, two)
    verdict = grade(two["keep_rate"] <= 0.3 and drop <= 0.01, two["keep_rate"] <= 0.5 and drop <= 0.05)
    if not image_families():
        verdict = "not tested"
    return _row("cls22", f"mean keep rate {_pct(two['keep_rate'])} on test, accuracy {_pct(two['overall'])} "
                f"vs {_pct(full['overall'])} unpruned ({said})", verdict)


def stages_claim() -> Row:
    rows = R.three_stages()
    sweep = R.vtw_sweep()["accuracy"]
    L = len(rows)
    full = sweep[str(L)] if str(L) in sweep else sweep[L]
    acc = [sweep[str(l)] if str(l) in sweep else sweep[l] for l in range(L + 1)]
    exit_ok = next((l for l in range(L + 1) if acc[l] >= full - 0.01), L)
    verdict = grade(exit_ok <= L // 2, exit_ok < L)
    if not image_families() or acc[0] >= full - 0.01:  # nothing to lose: the test says nothing
        verdict = "not tested"
    return _row("stages", f"removing all vision tokens before layer {exit_ok} of {L} costs <= 1 point on val "
                f"(before layer 1: {_pct(acc[1])}, unpruned: {_pct(full)})", verdict)


def dyvte_claim() -> Row:
    d = R.dyvte()
    seeds = list(d["seeds"].values())
    saved = float(np.mean([1 - s["test"]["flops_ratio"] for s in seeds]))
    drops = [worst_drop(d["full"], s["test"]) for s in seeds]
    drop = float(np.mean([x for x, _ in drops]))
    verdict = grade(saved >= 0.4 and drop <= 0.01, saved >= 0.2 and drop <= 0.02)
    if not image_families():
        verdict = "not tested"
    return _row("dyvte", f"{_pct(saved)} less decoder prefill FLOPs on test (mean over {len(seeds)} router seeds); "
                f"seed {list(d['seeds'])[0]}: {drops[0][1]}; judged drop {100 * drop:.1f} points (per seed the "
                f"larger of the overall and the image-family drop, averaged over seeds)", verdict)


def generality_claim() -> Row:
    return _row("generality", "the testbed is one LLaVA model; the engine runs DyVTE-style exits on tiny LLaVA, LLaVA-NeXT, "
                "Qwen2-VL and InternVL configs in the tests, but no trained routers exist for them here", "not tested")


def complementary_claim() -> Row:
    d = R.dyvte()
    fd, f = d["fastv_dyvte"], _rec("fastv", 0.5, R.methods_table())
    if f is None:
        return _row("complementary", "missing", "not tested")
    drop, _ = worst_drop(f, fd)
    verdict = grade(fd["flops_ratio"] < f["flops_ratio"] and drop <= 0.01)
    if not image_families():
        verdict = "not tested"
    return _row("complementary", f"FastV(0.5)+DyVTE: FLOPs {_pct(fd['flops_ratio'])}, accuracy {_pct(fd['overall'])}; "
                f"FastV(0.5) alone: {_pct(f['flops_ratio'])}, {_pct(f['overall'])}", verdict)


CLAIMS = (rank_claim, nested_claim, greedy_claim, gsearch_claim, sshape_claim, psigmoid_claim, tokenpacker_claim,
          longtail_claim, cls22_claim, stages_claim, dyvte_claim, generality_claim, complementary_claim)


def headline() -> list[Row]:
    return [c() for c in CLAIMS]
