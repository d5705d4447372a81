"""A paired sequential test for G-Search's decisions: "does this plan stay within the tolerance of
the unpruned model?", answered on as many validation questions as the answer needs.

On 600 questions a tolerance of 0.5 points is 3 questions, so a fixed split decides many plans
inside the noise. Instead, a candidate plan is scored on the first look (the first `looks[0]`
questions) and compared, question by question, with the unpruned model's answers to the same
questions. Let d be the per-question difference (1 if only the plan is right, -1 if only the
unpruned model is, else 0). The decision is settled at a look when the interval
mean(d) +- z * sd(d) / sqrt(n) lies wholly above -tolerance (feasible) or wholly below it
(infeasible); otherwise the next look adds questions. At the last look the point estimate
decides. z is the normal quantile of 1 - alpha / (2 * number of looks): the two-sided level alpha
split evenly over the looks (Bonferroni), conservative for any correlation between looks.

This is a group-sequential design of our own (the main paper gives no search statistics): with
looks at 600, 1500 and 2400 questions, plans far from the boundary cost 600 questions and only
the close ones reach 2400. The score it hands G-Search is the unpruned accuracy on all questions
plus mean(d) on the questions used, so G-Search's rule `score >= reference - tolerance` makes
exactly the test's decision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import norm


def look_z(alpha: float, n_looks: int) -> float:
    """Critical value of each look: the two-sided level `alpha` split over `n_looks` looks."""
    if not 0 < alpha < 1 or n_looks < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_looks >= 1, got {alpha}, {n_looks}")
    return float(norm.ppf(1 - alpha / (2 * n_looks)))


def interval(d: np.ndarray, z: float) -> tuple[float, float]:
    """mean(d) -+ z standard errors (sample sd; zero when every difference is equal)."""
    d = np.asarray(d, dtype=float)
    m = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    return m - z * se, m + z * se


def settled(d: np.ndarray, tolerance: float, z: float) -> bool:
    """True when the interval of mean(d) lies wholly on one side of -tolerance."""
    lo, hi = interval(d, z)
    return lo > -tolerance or hi < -tolerance


@dataclass(frozen=True)
class Decision:
    score: float        # reference mean on all questions + mean(d) on the questions used
    difference: float   # mean(d): plan minus unpruned, on the questions used
    lo: float
    hi: float
    questions: int      # questions the decision used
    settled: bool       # decided by the interval (False: by the point estimate at the last look)


def sequential_difference(reference: np.ndarray, answers: Callable[[int, int], np.ndarray], tolerance: float,
                          looks: tuple[int, ...], alpha: float = 0.05) -> Decision:
    """Run the test. `reference`: the unpruned model's per-question correctness on all questions
    (length looks[-1]); `answers(lo, hi)`: the plan's correctness on questions lo..hi-1, asked for
    one look at a time."""
    reference = np.asarray(reference, dtype=float)
    if list(looks) != sorted(set(looks)) or looks[0] < 1 or looks[-1] != len(reference):
        raise ValueError("looks must increase from >= 1 to the number of reference answers "
                         f"({len(reference)}), got {looks}")
    z = look_z(alpha, len(looks))
    got: list[np.ndarray] = []
    start = 0
    for n in looks:
        part = np.asarray(answers(start, n), dtype=float)
        if len(part) != n - start:
            raise ValueError(f"answers({start}, {n}) returned {len(part)} values")
        got.append(part)
        start = n
        d = np.concatenate(got) - reference[:n]
        done = settled(d, tolerance, z)
        if done or n == looks[-1]:
            lo, hi = interval(d, z)
            return Decision(score=float(reference.mean() + d.mean()), difference=float(d.mean()), lo=lo,
                            hi=hi, questions=n, settled=done)
    raise AssertionError("unreachable")
