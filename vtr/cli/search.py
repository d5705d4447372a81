"""`vtr search gsearch|psigmoid`: the main paper's two searches on a model's validation split.

The same functions as the book (`vtr.experiments.searches.run_gsearch` / `run_psigmoid`): the plan
is saved in the results folder (printed as `saved`), where `vtr eval --method gsearch|psigmoid`
reads it; a search on anything but the whole val split is saved under its own name."""
from __future__ import annotations

import argparse
import json

from .args import MODEL_HELP, fraction, nonnegative_float, nonnegative_int, positive_int


def _common(p):
    p.add_argument("--model", default="testbed", help=MODEL_HELP)
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--query", default="last", choices=["last", "text_mean"], help="vision-token score")
    p.add_argument("--source", default="previous", choices=["previous", "current"],
                   help="score from the previous layer's attention (the main paper, FastV) or the current "
                        "layer's q/k (PyramidDrop)")
    p.add_argument("--out", help="trace file (JSONL; default: beside the results' run files); rerunning with "
                                 "the same trace resumes without repeating evaluations. The plan is saved in "
                                 "the results folder, which refuses it while a search traced elsewhere is "
                                 "saved under the same name")
    p.add_argument("--limit", type=positive_int, help="search on the first N samples")
    p.add_argument("--json", action="store_true")


def _setup(args):
    from ..models import load, load_split

    runner = load(args.model)
    return runner, load_split(args.model, args.split, args.limit)


# what `vtr search` prints of the saved search (the book reads the same file)
SHOWN = ("plan", "flops_ratio", "keep_rate", "val_score", "reference", "evaluations", "new_evaluations",
         "params", "budget", "kind", "budget_achieved", "sequential", "saved")


def _print(out: dict, as_json: bool) -> None:
    print(json.dumps({k: out[k] for k in SHOWN if k in out}, indent=None if as_json else 2))


def _gsearch(args) -> int:
    from pathlib import Path

    from ..experiments.searches import run_gsearch

    from ..models import load_split

    runner, split = _setup(args)
    # the book's search: on the whole val split, close decisions add val-extra's questions
    extra = (load_split(args.model, "val-extra")
             if args.split == "val" and args.limit is None and not args.fixed else None)
    _print(run_gsearch(runner, split, args.tolerance, query=args.query, start_layer=args.start_layer,
                       source=args.source, split_name=args.split, trace=Path(args.out) if args.out else None,
                       extra=extra), args.json)
    return 0


def _psigmoid(args) -> int:
    from pathlib import Path

    from ..experiments.searches import run_psigmoid
    from ..plan import Plan

    runner, split = _setup(args)
    init = None
    if args.init:
        saved = json.loads(Path(args.init).read_text())
        init = Plan(tuple(saved["plan"]), runner.n_vision)
    _print(run_psigmoid(runner, split, args.budget, kind=args.kind, init_plan=init, query=args.query,
                        n_iter=args.n_iter, seed=args.seed, source=args.source, split_name=args.split,
                        trace=Path(args.out) if args.out else None), args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search",
                       help="G-Search (least tokens within a tolerance) or P-Sigmoid + BO (best at a budget)")
    s = p.add_subparsers(dest="search_command", required=True)
    g = s.add_parser("gsearch", help="greedy shallow-to-deep binary search of per-layer keep counts")
    _common(g)
    g.add_argument("--tolerance", type=nonnegative_float, default=0.005,
                   help="allowed drop of the val score (absolute)")
    g.add_argument("--start-layer", type=nonnegative_int, default=1)
    g.add_argument("--fixed", action="store_true",
                   help="decide on the val split alone (default on the whole val split: a paired sequential "
                        "test that adds val-extra's questions when a decision is close; with --limit, always "
                        "fixed)")
    g.set_defaults(func=_gsearch)
    q = s.add_parser("psigmoid", help="P-Sigmoid schedule at a budget, parameters by Bayesian optimisation")
    _common(q)
    q.add_argument("--budget", type=fraction, required=True, help="in (0, 1]: mean keep rate or FLOPs ratio")
    q.add_argument("--kind", default="keep", choices=["keep", "flops"])
    q.add_argument("--init", help="JSON with a G-Search plan to fit the initial sigmoid to")
    q.add_argument("--n-iter", type=positive_int, default=40)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_psigmoid)
