"""`vtr search gsearch|psigmoid`: the main paper's two searches on a model's validation split."""
from __future__ import annotations

import argparse
import json

from .cli_args import MODEL_HELP, fraction, nonnegative_float, nonnegative_int, positive_int


def _common(p):
    p.add_argument("--model", default="testbed", help=MODEL_HELP)
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--query", default="last", choices=["last", "text_mean"], help="vision-token score")
    p.add_argument("--source", default="previous", choices=["previous", "current"],
                   help="score from the previous layer's attention (the main paper, FastV) or the current "
                        "layer's q/k (PyramidDrop)")
    p.add_argument("--out", help="trace file (JSONL); rerunning with it resumes without repeating evaluations")
    p.add_argument("--limit", type=positive_int, help="search on the first N samples")
    p.add_argument("--json", action="store_true")


def _setup(args):
    from .models import load, load_split

    runner = load(args.model)
    return runner, load_split(args.model, args.split, args.limit)


def _gsearch(args) -> int:
    from pathlib import Path

    from . import experiments
    from .search import Trace, gsearch

    runner, split = _setup(args)
    info = experiments.info_for(runner, split)
    trace = Trace(Path(args.out)) if args.out else None
    res = gsearch(experiments.val_scorer(runner, split, args.query, source=args.source), info.n_layers, info.n_vision,
                  args.tolerance,
                  start_layer=args.start_layer, flops_fn=lambda p: info.cost(p, "flops"), trace=trace)
    out = {"plan": list(res.plan.keep), "flops_ratio": res.flops_ratio, "val_score": res.score,
           "reference": res.reference, "evaluations": res.evaluations, "new_evaluations": res.scorer_calls,
           "keep_rate": res.plan.mean_keep_rate}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


def _psigmoid(args) -> int:
    from pathlib import Path

    from . import experiments
    from .plan import Plan
    from .search import Trace, psigmoid_search

    runner, split = _setup(args)
    info = experiments.info_for(runner, split)
    init = None
    if args.init:
        saved = json.loads(Path(args.init).read_text())
        init = Plan(tuple(saved["plan"]), info.n_vision)
    trace = Trace(Path(args.out)) if args.out else None
    res = psigmoid_search(experiments.val_scorer(runner, split, args.query, source=args.source), info.n_layers, info.n_vision,
                          args.budget, kind=args.kind, init=init, n_iter=args.n_iter, seed=args.seed, trace=trace,
                          flops_fn=lambda p: info.cost(p, "flops"))
    out = {"plan": list(res.plan.keep), "flops_ratio": res.flops_ratio, "val_score": res.score,
           "evaluations": res.evaluations, "new_evaluations": res.scorer_calls, "params": res.params.__dict__,
           "budget": args.budget, "keep_rate": res.plan.mean_keep_rate,
           "kind": args.kind, "budget_achieved": res.budget_achieved}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="G-Search (least tokens within a tolerance) or P-Sigmoid + BO (best at a budget)")
    s = p.add_subparsers(dest="search_command", required=True)
    g = s.add_parser("gsearch", help="greedy shallow-to-deep binary search of per-layer keep counts")
    _common(g)
    g.add_argument("--tolerance", type=nonnegative_float, default=0.005,
                   help="allowed drop of the val score (absolute)")
    g.add_argument("--start-layer", type=nonnegative_int, default=1)
    g.set_defaults(func=_gsearch)
    q = s.add_parser("psigmoid", help="P-Sigmoid schedule at a budget, parameters by Bayesian optimisation")
    _common(q)
    q.add_argument("--budget", type=fraction, required=True, help="in (0, 1]: mean keep rate or FLOPs ratio")
    q.add_argument("--kind", default="keep", choices=["keep", "flops"])
    q.add_argument("--init", help="JSON with a G-Search plan to fit the initial sigmoid to")
    q.add_argument("--n-iter", type=positive_int, default=40)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_psigmoid)
