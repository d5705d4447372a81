"""What every method module shares: the model description a method is built for, budgets, registry.

A *budget* is the mean fraction of vision tokens present per decoder layer (`kind="keep"`,
the usual "x% reduction": 0.125 = 87.5% fewer vision tokens on average over layers, an
encoder-side cut counting at every layer), or the decoder prefill FLOPs fraction
(`kind="flops"`, `vtr.flops`). Every method can be set to a budget so tables compare at equal cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..flops import DecoderShape, flops_ratio
from ..plan import Plan, PlanError

BUDGET_KINDS = ("keep", "flops")


@dataclass(frozen=True)
class ModelInfo:
    """The sizes a method needs; built from a model by `vtr.methods.model_info(model, n_vision, n_text)`."""
    n_layers: int
    n_vision: int
    n_text: int
    shape: DecoderShape

    def cost(self, plan: Plan, kind: str) -> float:
        """The budget a plan spends: mean keep rate or FLOPs fraction."""
        check_budget_kind(kind)
        return plan.mean_keep_rate if kind == "keep" else flops_ratio(plan, self.n_text, self.shape)


def model_info(model, n_vision: int, n_text: int) -> ModelInfo:
    cfg = model.config.get_text_config()
    return ModelInfo(cfg.num_hidden_layers, n_vision, n_text, DecoderShape.from_config(cfg))


def check_budget_kind(kind: str) -> None:
    if kind not in BUDGET_KINDS:
        raise ValueError(f"unknown budget kind {kind!r}; expected one of {BUDGET_KINDS}")


def check_budget(budget: float) -> None:
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"budget must lie in (0, 1], got {budget}")


def solve_keep_after(info: ModelInfo, layer: int, budget: float, kind: str) -> Plan:
    """The plan keeping all tokens before `layer` and the largest constant count from `layer` on
    whose cost is <= budget. Raises PlanError when even keeping none from `layer` costs too much."""
    check_budget(budget), check_budget_kind(kind)
    best = None
    for k in range(info.n_vision, -1, -1):
        plan = Plan.drop_at(info.n_layers, info.n_vision, layer, k)
        if info.cost(plan, kind) <= budget + 1e-9:
            best = plan
            break
    if best is None:
        raise PlanError(f"budget {budget} ({kind}) is infeasible when the first {layer} layers keep every token")
    return best


Factory = Callable[..., object]
REGISTRY: dict[str, Factory] = {}


def register(name: str):
    """Decorator: `@register("fastv") def make(info, budget=None, kind="keep", **hp) -> Policy`."""
    from ..catalogue import REGISTERED

    if name not in REGISTERED:  # one list of methods: the CLI, the book and the registry read it
        raise ValueError(f"method {name!r} is not in vtr.catalogue.METHODS; add it there first")

    def deco(fn):
        REGISTRY[name] = fn
        return fn
    return deco
