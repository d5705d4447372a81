"""VTW, Visual Tokens Withdrawal (Lin et al., 2024, "Boosting Multimodal Large Language Models with
Visual Tokens Withdrawal for Rapid Inference").

Paper: after layer K every visual token is withdrawn (hidden states and KV cache): layers >= K see
text only. K is chosen once per model on a few samples: K = the first layer for which the KL
divergence between the output distribution of the full model and that of the model with the
visual tokens withdrawn from layer K is below a threshold eta (K = 15 on 32-layer LLaVA-1.5-7B).

Here:
* the plan is `Plan.drop_at(L, n, K, 0)` run by `PlanPolicy` (keep 0 = no ranking needed);
* K given directly (`K=`), or chosen with `choose_k(logits_fn, eta, n_layers=..., full=...)`: a
  model-agnostic scan over K = 0, 1, ... (shallow to deep, stopping at the first success) of the
  sample-mean KL(full || withdrawn) of the last-token next-token distributions; `logits_fn(K)`
  returns (n_samples, V) log-probabilities (or logits: both are normalised with log_softmax);
  `full` defaults to `logits_fn(n_layers)` (withdrawing after the last layer = the full model).
  If no K < L passes, K = L (nothing withdrawn);
* default K when neither is given: round(15 L / 32), the paper's LLaVA-1.5-7B value scaled to
  depth (a stand-in: the paper chooses K per model by the KL rule);
* at a budget: K = the largest K with cost <= budget (keep-rate cost = K / L), capped by a given
  K. The family's step is one whole layer of vision tokens, so the plan is within one layer's
  share (1/L in keep rate) of the budget, not one token per layer; a FLOPs budget below the
  text-only cost (K = 0) is infeasible (PlanError).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..engine.policy import PlanPolicy
from ..plan import Plan, PlanError
from .base import (ModelInfo, check_bool, check_budget, check_budget_kind, check_int, check_number,
                   option_error, register)

PAPER_K, PAPER_DEPTH = 15, 32
_EPS = 1e-9


def default_layer(n_layers: int) -> int:
    return round(PAPER_K * n_layers / PAPER_DEPTH)


def kl_full_vs(full: torch.Tensor, withdrawn: torch.Tensor) -> float:
    """Sample-mean KL(full || withdrawn) of (n_samples, V) log-probs or logits."""
    if full.shape != withdrawn.shape or full.ndim != 2:
        raise ValueError(f"expected two (n_samples, V) tensors of equal shape, got {tuple(full.shape)} "
                         f"and {tuple(withdrawn.shape)}")
    lp = torch.log_softmax(full.double(), -1)
    lq = torch.log_softmax(withdrawn.double(), -1)
    return float((lp.exp() * (lp - lq)).sum(-1).mean())


def choose_k(logits_fn: Callable[[int], torch.Tensor], eta: float, *, n_layers: int,
             full: torch.Tensor | None = None, start: int = 0, trace: list | None = None) -> int:
    """The first K in start..n_layers-1 whose sample-mean KL(full || withdrawn at K) < eta; n_layers
    if none. `logits_fn(K)`: (n_samples, V) last-token log-probs with the vision tokens withdrawn
    before layer K. `trace`, if given, receives (K, KL) pairs as they are computed."""
    check_number("vtw", "eta", eta, 0.0, lo_open=True)
    check_int("vtw", "start", start, 0, n_layers)
    full = logits_fn(n_layers) if full is None else full
    for k in range(start, n_layers):
        kl = kl_full_vs(full, logits_fn(k))
        if trace is not None:
            trace.append((k, kl))
        if kl < eta:
            return k
    return n_layers


def plan_for(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None) -> Plan:
    L, n = info.n_layers, info.n_vision
    if K is not None:
        K = check_int("vtw", "K", K, 0, L)
    if budget is None:
        return Plan.drop_at(L, n, default_layer(L) if K is None else K, 0)
    check_budget(budget), check_budget_kind(kind)
    for k in range(L if K is None else K, -1, -1):
        plan = Plan.drop_at(L, n, k, 0)
        if info.cost(plan, kind) <= budget + _EPS:
            return plan
    raise PlanError(f"VTW cannot meet budget {budget:.4g} ({kind}): withdrawing every vision token "
                    f"before layer 0 costs {info.cost(Plan.drop_at(L, n, 0, 0), kind):.4g}")


@register("vtw")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep", K: int | None = None,
         logits_fn: Callable[[int], torch.Tensor] | None = None, eta: float | None = None,
         full: torch.Tensor | None = None, scale_to_input: bool = False):
    """K: given, or chosen by `choose_k(logits_fn, eta)` when both are passed, else the default."""
    if logits_fn is not None or eta is not None:
        if K is not None:
            raise option_error("vtw", "K", K, "no K with the KL rule (logits_fn and eta choose it)")
        if logits_fn is None or eta is None:
            given, value, other = ("eta", eta, "logits_fn") if logits_fn is None else \
                ("logits_fn", logits_fn, "eta")
            raise option_error("vtw", given, value, f"{given} together with {other} (the KL rule; logits_fn "
                               "is a callable, passed through the API)")
        K = choose_k(logits_fn, eta, n_layers=info.n_layers, full=full)
    scale_to_input = check_bool("vtw", "scale_to_input", scale_to_input)
    return PlanPolicy(plan_for(info, budget, kind, K), scale_to_input=scale_to_input)
