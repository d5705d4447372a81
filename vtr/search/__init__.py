"""Model-agnostic plan searches (main paper): G-Search and P-Sigmoid with Bayesian optimisation.

Searches take a scorer `score_fn(plan) -> float` (higher is better) and never touch a model; every
evaluation is memoised in a resumable JSONL `Trace`.
"""
from .gsearch import GSearchResult, gsearch, max_evaluations
from .psigmoid import (BudgetError, BudgetSolution, PSigmoidResult, SigmoidParams, fit_to_plan,
                       max_floor, psigmoid_plan, psigmoid_rates, psigmoid_search, solve_budget)
from .traces import MemoScorer, Trace, TraceError, plan_key

__all__ = ["GSearchResult", "gsearch", "max_evaluations", "BudgetError", "BudgetSolution",
           "PSigmoidResult", "SigmoidParams", "fit_to_plan", "max_floor", "psigmoid_plan",
           "psigmoid_rates", "psigmoid_search", "solve_budget", "MemoScorer", "Trace", "TraceError",
           "plan_key"]
