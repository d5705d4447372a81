"""P-Sigmoid: a parametric S-shaped keep-rate curve under a budget, tuned by Bayesian optimisation.

Paper (Zhao et al., arXiv 2412.00556, CVPR 2025, Scenario II): the keep rate of each layer follows
a sigmoid shaped after the G-Search curve; its parameters are optimised by Bayesian Optimization
for the best accuracy at a given reduction budget. The public text gives neither the formula nor
the budget handling; we chose:

* curve: r(l) = b + (1 - b) / (1 + exp(k (x_l - a))) with normalised depth x_l = l / (L - 1), so
  parameters transfer across models of different depth. a = midpoint (in depth units), k > 0 =
  steepness, b in [0, 1] = floor. Layers < start_layer keep every token (r = 1). Rates become
  integer counts with `Plan.from_rates` (round to nearest).
* budget: "keep" = mean keep rate over all layers (`Plan.mean_keep_rate`), or "flops" =
  `flops_fn(plan)`, a decoder-FLOPs fraction. Both measures increase with a, so the budget is met
  by solving the midpoint **a** by bisection for every proposal: the largest integer plan whose
  measure is <= budget (exact up to one rounding step, i.e. within 1/n_vision in keep rate).
  We solve a rather than b because a has an unbounded range (any budget above the floor plan is
  reachable) and keeps the floor a free shape parameter. A budget below the floor plan (all layers
  >= start_layer at b) is infeasible for that b: `solve_budget` lowers b to the largest feasible
  floor (`clamped=True`, with a note); if even b = 0 exceeds the budget it raises BudgetError.
* BO (`bayes_opt` 3.x, UCB kappa=2.576, fixed random_state) over the free parameters
  log10(k) in log10(k_bounds) (default k in [1, 200]) and b in [0, max feasible floor]; the
  target is score_fn of the budget-solved plan. The init params (fitted to a G-Search plan with
  `fit_to_plan`, or given, or a default) are probed first, then `n_random` random points, then BO
  suggestions. Distinct proposals can round to the same integer plan: scores are memoised on the
  plan (and through the `Trace`), and only distinct plans count towards `n_iter`.
* resuming: the search is replayed deterministically from the seed, with scores of traced plans
  read from the trace (re-registered with the optimiser in the original order), so a resumed run
  makes no repeated scorer call and ends with the same result as an uninterrupted one (given the
  same numeric environment: GP fits must be bitwise reproducible; if they are not, the resumed
  run still reuses every traced score but may follow another path). A rerun with a larger n_iter
  continues the same search.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit
from tqdm.auto import tqdm

from ..errors import InputError
from ..plan import Plan
from .traces import MemoScorer, Trace, scorer_fingerprint, scorer_name

EPS = 1e-12
_TAIL = 800.0  # k * distance beyond which expit is exactly 0.0 or 1.0 in float64


class BudgetError(InputError):
    """A budget that no plan of the family can meet."""


@dataclass(frozen=True)
class SigmoidParams:
    a: float  # midpoint, in normalised depth x = l / (L - 1)
    k: float  # steepness (> 0), per unit of normalised depth
    b: float  # floor keep rate in [0, 1]

    def __post_init__(self):
        for name in ("a", "k", "b"):
            object.__setattr__(self, name, float(getattr(self, name)))
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"P-Sigmoid parameter {name} must be finite, got {getattr(self, name)}")
        if self.k <= 0:
            raise ValueError(f"P-Sigmoid steepness k must be > 0, got {self.k}")
        if not 0.0 <= self.b <= 1.0:
            raise ValueError(f"P-Sigmoid floor b must be in [0, 1], got {self.b}")


@dataclass(frozen=True)
class BudgetSolution:
    params: SigmoidParams  # with the solved midpoint a (and b lowered if clamped)
    plan: Plan
    achieved: float        # mean keep rate or flops_fn(plan); <= budget (+1e-12)
    clamped: bool = False
    note: str = ""


@dataclass(frozen=True)
class PSigmoidResult:
    plan: Plan
    params: SigmoidParams
    score: float
    evaluations: int        # distinct plans scored (fresh or from the trace)
    flops_ratio: float | None
    budget_achieved: float
    history: tuple[dict, ...]  # one entry per proposal, in order
    scored: tuple[dict, ...] = field(default=(), compare=False, repr=False)  # their trace lines
    scorer_calls: int = field(default=0, compare=False)


def _check_sizes(n_layers, n_vision, start_layer):
    if not isinstance(n_layers, numbers.Integral) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
    if not isinstance(n_vision, numbers.Integral) or n_vision < 1:
        raise ValueError(f"n_vision must be a positive integer, got {n_vision!r}")
    if not 0 <= start_layer < n_layers:
        raise ValueError(f"start_layer must be in 0..{n_layers - 1}, got {start_layer}")


def _depth(n_layers: int) -> np.ndarray:
    return np.arange(n_layers) / (n_layers - 1) if n_layers > 1 else np.zeros(1)


def psigmoid_rates(params: SigmoidParams, n_layers: int, start_layer: int = 1) -> np.ndarray:
    """Per-layer keep rates r(l); layers before start_layer keep 1. Non-increasing in l."""
    r = params.b + (1.0 - params.b) * expit(-params.k * (_depth(n_layers) - params.a))
    r[:start_layer] = 1.0
    return np.clip(r, 0.0, 1.0)


def psigmoid_plan(params: SigmoidParams, n_layers: int, n_vision: int, start_layer: int = 1) -> Plan:
    return Plan.from_rates(psigmoid_rates(params, n_layers, start_layer).tolist(), n_vision)


def fit_to_plan(plan: Plan, start_layer: int = 1) -> SigmoidParams:
    """Least-squares fit of (a, k, b) to the keep rates of layers >= start_layer of `plan`."""
    _check_sizes(plan.n_layers, max(plan.n_vision, 1), start_layer)
    x, y = _depth(plan.n_layers)[start_layer:], np.asarray(plan.rates[start_layer:])

    def resid(th):
        a, logk, b = th
        return b + (1 - b) * expit(-np.exp(logk) * (x - a)) - y

    lb, ub = np.array([-1.0, math.log(0.1), 0.0]), np.array([2.0, math.log(1e4), 1.0])
    below = y <= (y.max() + y.min()) / 2
    a0 = float(x[np.argmax(below)]) if below.any() else 0.5
    best = None
    for k0 in (3.0, 10.0, 30.0, 100.0):
        th0 = np.clip([a0, math.log(k0), min(float(y.min()), 0.99)], lb + 1e-9, ub - 1e-9)
        fit = least_squares(resid, th0, bounds=(lb, ub), method="trf")
        if best is None or fit.cost < best.cost - 1e-15:
            best = fit
    a, logk, b = best.x
    return SigmoidParams(a, math.exp(logk), float(np.clip(b, 0, 1)))


def _measure(kind: str, flops_fn):
    if kind == "keep":
        return lambda p: p.mean_keep_rate
    if kind == "flops":
        if flops_fn is None:
            raise ValueError('kind="flops" needs flops_fn(plan) -> decoder FLOPs fraction')
        return lambda p: float(flops_fn(p))
    raise ValueError(f'budget kind must be "keep" or "flops", got {kind!r}')


def _check_budget(budget):
    if not (isinstance(budget, numbers.Real) and 0.0 < budget <= 1.0):
        raise ValueError(f"budget must be in (0, 1] (a keep-rate or FLOPs fraction), got {budget!r}")


def max_floor(budget: float, kind: str = "keep", *, n_layers: int, n_vision: int,
              start_layer: int = 1, flops_fn=None) -> float:
    """Largest floor b for which some midpoint meets the budget (the floor plan fits in it)."""
    _check_budget(budget)
    _check_sizes(n_layers, n_vision, start_layer)
    m = _measure(kind, flops_fn)

    def floor(b):
        return Plan.from_rates([1.0] * start_layer + [b] * (n_layers - start_layer), n_vision)

    if m(floor(0.0)) > budget + EPS:
        raise BudgetError(f"budget {budget} ({kind}) is infeasible: even dropping every vision token "
                          f"from layer {start_layer} on gives {m(floor(0.0)):.6g} (layers before "
                          f"start_layer keep all); raise the budget or lower start_layer")
    if m(floor(1.0)) <= budget + EPS:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if m(floor(mid)) <= budget + EPS else (lo, mid)
    return lo


def solve_budget(params: SigmoidParams, budget: float, kind: str = "keep", *, n_layers: int,
                 n_vision: int, start_layer: int = 1, flops_fn=None) -> BudgetSolution:
    """Solve the midpoint a so the integer plan meets the budget (largest plan with measure <= budget)."""
    _check_budget(budget)
    _check_sizes(n_layers, n_vision, start_layer)
    m = _measure(kind, flops_fn)

    def plan_at(a, p):
        return psigmoid_plan(replace(p, a=a), n_layers, n_vision, start_layer)

    a_lo, a_hi = -1.0 - _TAIL / params.k, 2.0 + _TAIL / params.k  # floor plan .. full plan
    full = plan_at(a_hi, params)
    if m(full) <= budget + EPS:
        return BudgetSolution(replace(params, a=a_hi), full, m(full), note="budget admits the full plan")
    clamped, note = False, ""
    if m(plan_at(a_lo, params)) > budget + EPS:
        b = max_floor(budget, kind, n_layers=n_layers, n_vision=n_vision, start_layer=start_layer,
                      flops_fn=flops_fn)
        clamped, note = True, f"floor b={params.b:.4g} exceeds the budget; lowered to {b:.4g}"
        params = replace(params, b=b)
    lo, hi = a_lo, a_hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if m(plan_at(mid, params)) <= budget + EPS:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * (1.0 + abs(lo)):
            break
    plan = plan_at(lo, params)
    return BudgetSolution(replace(params, a=lo), plan, m(plan), clamped, note)


def psigmoid_search(score_fn: Callable[[Plan], float], n_layers: int, n_vision: int, budget: float,
                    *, kind: str = "keep", init: SigmoidParams | Plan | None = None,
                    n_iter: int = 40, seed: int = 0, trace: Trace | None = None,
                    flops_fn: Callable[[Plan], float] | None = None, progress: bool = True,
                    start_layer: int = 1, k_bounds: Sequence[float] = (1.0, 200.0),
                    n_random: int = 4, max_proposals: int | None = None,
                    name: str | None = None) -> PSigmoidResult:
    """Maximise score_fn over budget-solved P-Sigmoid plans with Bayesian optimisation.

    `init`: SigmoidParams, a Plan (fitted with `fit_to_plan`, e.g. the G-Search result) or None
    (a = 0.5, k = 10, b = 0). `n_iter` caps the distinct scorer calls; `max_proposals` (default
    4 * n_iter) caps the proposals, since many may round to already-scored plans.
    """
    from bayes_opt import BayesianOptimization, acquisition

    _check_budget(budget)
    _check_sizes(n_layers, n_vision, start_layer)
    n_layers, n_vision = int(n_layers), int(n_vision)
    _measure(kind, flops_fn)
    if not (isinstance(n_iter, numbers.Integral) and n_iter >= 1):
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    k_min, k_max = map(float, k_bounds)
    if not 0 < k_min < k_max:
        raise ValueError(f"k_bounds must satisfy 0 < k_min < k_max, got {k_bounds}")
    sizes = dict(n_layers=n_layers, n_vision=n_vision, start_layer=start_layer)
    b_max = max_floor(budget, kind, flops_fn=flops_fn, **sizes)

    if isinstance(init, Plan):
        if init.n_layers != n_layers or init.n_vision != n_vision:
            raise ValueError(f"init plan is for {init.n_layers} layers x {init.n_vision} tokens, "
                             f"the search for {n_layers} x {n_vision}")
        init = fit_to_plan(init, start_layer)
    init = init if init is not None else SigmoidParams(0.5, 10.0, 0.0)

    def lk(k):
        return math.log10(min(max(k, k_min), k_max))

    pbounds = {"log10_k": (math.log10(k_min), math.log10(k_max))}
    x0 = {"log10_k": lk(init.k)}
    if b_max > 1e-6:  # otherwise the floor is pinned at 0 and only k is searched
        pbounds["b"] = (0.0, b_max)
        x0["b"] = min(init.b, b_max)

    trace = trace if trace is not None else Trace(None)
    trace.bind({"search": "psigmoid", "budget": float(budget), "kind": kind, "seed": seed,
                "start_layer": start_layer, "k_bounds": [k_min, k_max], "n_random": n_random,
                "init": {"k": 10 ** x0["log10_k"], "b": x0.get("b", 0.0)},
                "scorer": scorer_name(score_fn, name), **scorer_fingerprint(score_fn), **sizes})
    memo = MemoScorer(score_fn, trace, "psigmoid", flops_fn)
    opt = BayesianOptimization(f=None, pbounds=pbounds, random_state=seed, verbose=0,
                               acquisition_function=acquisition.UpperConfidenceBound(kappa=2.576))
    queue = [x0] + opt.random_sample(n_random)
    max_proposals = 4 * n_iter if max_proposals is None else max_proposals
    history, best = [], None
    bar = tqdm(total=n_iter, desc="P-Sigmoid BO", disable=not progress)
    while memo.evaluations < n_iter and len(history) < max_proposals:
        x = queue.pop(0) if queue else opt.suggest()
        x = {k: float(v) for k, v in x.items()}
        if opt.space.params_to_array(x) in opt.space:  # exact repeat: explore instead
            x = {k: float(v) for k, v in opt.random_sample(1)[0].items()}
        sol = solve_budget(SigmoidParams(0.5, 10 ** x["log10_k"], x.get("b", 0.0)), budget, kind,
                           flops_fn=flops_fn, **sizes)
        before = memo.evaluations
        score = memo(sol.plan, params=asdict(sol.params), budget_achieved=sol.achieved)
        opt.register(x, score)
        entry = {"params": asdict(sol.params), "keep": list(sol.plan.keep), "score": score,
                 "budget_achieved": sol.achieved, "new": memo.evaluations > before}
        history.append(entry)
        bar.update(memo.evaluations - before)
        if best is None or score > best[0]["score"]:
            best = (entry, sol)
    bar.close()
    entry, sol = best
    return PSigmoidResult(plan=sol.plan, params=sol.params, score=entry["score"],
                          evaluations=memo.evaluations,
                          flops_ratio=None if flops_fn is None else float(flops_fn(sol.plan)),
                          budget_achieved=sol.achieved, history=tuple(history),
                          scored=memo.scored(), scorer_calls=memo.calls)
