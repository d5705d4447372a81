"""A method by name, as a Policy for a model: the one place the CLI, the book and the lmms-eval
model turn a method name (`vtr.catalogue.METHODS`), a budget and hyper-parameters into a policy."""
from __future__ import annotations

from .. import methods
from ..catalogue import BY_NAME, NAMES
from ..engine import PlanPolicy, Policy
from ..errors import InputError
from ..plan import Plan
from . import store
from .searches import SEARCH_SOURCE, info_for, search_name


def policy_for(runner, split, name: str, budget: float | None, kind: str = "keep", seed: int = 0,
               **hp) -> Policy:
    """A method by name; `gsearch`/`psigmoid` read their searched plans from the results folder."""
    if name not in BY_NAME:
        raise InputError(f"unknown method {name!r}; known: {', '.join(NAMES)}")
    if BY_NAME[name].side == "reference":
        return Policy()
    if BY_NAME[name].side == "searched":
        # `source`: how the plan's layers score tokens; `search_source`: which search's plan (the
        # search scored with its own source; by default the plan of the main search, so that
        # `source=current` alone scores the same plan the other way)
        query, source = hp.get("query", "last"), hp.get("source", SEARCH_SOURCE)
        searched = hp.get("search_source", SEARCH_SOURCE)
        saved = store.load_json(search_name(name, query, searched, budget, kind, model=runner.name))
        if saved is None:
            raise FileNotFoundError(f"no saved {name} plan for budget {budget} ({kind}, searched with "
                                    f"{searched} scores); run `vtr search {name}` first")
        return PlanPolicy(Plan(tuple(saved["plan"]), saved["n_vision"]), query=query, source=source)
    factory = methods.get(name)
    check_hyperparameters(name, factory, hp)
    kwargs = dict(hp)
    if name in ("random", "dyvte"):
        kwargs["seed"] = seed
    return factory(info_for(runner, split), budget=budget, kind=kind, **kwargs)


def check_hyperparameters(name: str, factory, hp: dict) -> None:
    """Refuse a hyper-parameter the method does not take, or a text value where it takes a number,
    naming the accepted ones (before any work, instead of a TypeError deep in the method)."""
    import inspect

    params = {k: v for k, v in inspect.signature(factory).parameters.items()
              if k not in ("info", "budget", "kind", "seed")}
    for key, value in hp.items():
        if key not in params:
            raise InputError(f"method {name} has no hyper-parameter {key!r}; it takes: "
                             f"{', '.join(params) or 'none'}")
        default = params[key].default
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            raise InputError(f"method {name}: hyper-parameter {key}={value!r} must be a number")
