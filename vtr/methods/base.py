"""What every method module shares: the model description a method is built for, budgets, registry.

A *budget* is the mean fraction of vision tokens present per decoder layer (`kind="keep"`,
the usual "x% reduction": 0.125 = 87.5% fewer vision tokens on average over layers, an
encoder-side cut counting at every layer), or the decoder prefill FLOPs fraction
(`kind="flops"`, `vtr.flops`). Every method can be set to a budget so tables compare at equal cost.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

from ..errors import InputError
from ..flops import DecoderShape, flops_ratio
from ..plan import Plan, PlanError

BUDGET_KINDS = ("keep", "flops")


class MethodOptionError(InputError):
    """A method's budget, budget kind or hyper-parameter value outside what it accepts; the message
    names the option and the accepted values (`vtr eval --hp NAME=VALUE` prints it as one line)."""


def option_error(method: str, name: str, value, accepted: str) -> MethodOptionError:
    return MethodOptionError(f"method {method}: {name}={value!r} is not accepted; expected {accepted}")


def check_choice(method: str, name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise option_error(method, name, value, f"one of {', '.join(map(str, choices))}")


def check_int(method: str, name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int within lo..hi (either end open when None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            (lo is not None and value < lo) or (hi is not None and value > hi):
        where = f" in {lo}..{hi}" if lo is not None and hi is not None else \
            f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None else ""
        raise option_error(method, name, value, f"an integer{where}")
    return int(value)


def check_number(method: str, name: str, value, lo: float, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False) -> float:
    """`value` as a float in the interval from lo to hi (open at an end when asked; hi None: no upper end)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
    if ok:
        above = value > lo if lo_open else value >= lo
        ok = above and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        span = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}" if hi is not None else \
            f"{'>' if lo_open else '>='} {lo}"
        raise option_error(method, name, value, f"a number {'in ' if hi is not None else ''}{span}")
    return float(value)


def check_bool(method: str, name: str, value) -> bool:
    """True/False, or 1/0 as `--hp NAME=1` gives."""
    if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise option_error(method, name, value, "true or false (1 or 0)")


def check_layers(method: str, name: str, value, lo: int, hi: int) -> tuple[int, ...]:
    """Increasing layer indices in lo..hi from a sequence of ints, one int, or text such as "8,16,24"."""
    items = value
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",") if x.strip()]
        try:
            items = [int(x) for x in items]
        except ValueError:
            items = None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = [value]
    try:
        layers = tuple(items)
    except TypeError:
        layers = None
    if layers is None or any(isinstance(x, bool) or not isinstance(x, numbers.Integral)
                                           for x in layers) or \
            any(not lo <= x <= hi for x in layers) or list(layers) != sorted(set(layers)):
        raise option_error(method, name, value,
                           f"increasing layer indices in {lo}..{hi} (e.g. {lo + 1},{hi})")
    return tuple(int(x) for x in layers)


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
        raise MethodOptionError(f"unknown budget kind {kind!r}; expected one of {', '.join(BUDGET_KINDS)}")


def check_budget(budget: float) -> None:
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not 0.0 < budget <= 1.0:
        raise MethodOptionError(f"budget={budget!r} is not accepted; expected a number in (0, 1]")


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
        raise PlanError(f"budget {budget} ({kind}) is infeasible when the first {layer} layers keep every "
                        "token")
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
