"""`vtr eval`: one method at one budget on a split; prints the record and appends it to the store."""
from __future__ import annotations

import argparse
import json


def _eval(args) -> int:
    from . import experiments, methods
    from .models import load, load_split

    if args.list_methods:
        print("\n".join(["full", "gsearch", "psigmoid"] + methods.names()))
        return 0
    if not args.method:
        raise SystemExit("vtr eval: --method is required (see --list-methods)")
    runner = load(args.model)
    split = load_split(args.model, args.split, args.limit, bench=args.bench, data=args.data)
    hp = dict(kv.split("=", 1) for kv in args.hp)
    hp = {k: _number(v) for k, v in hp.items()}
    rec = experiments.eval_method(runner, split, args.method, args.budget, args.kind, args.seed,
                                  experiment=args.experiment, split_name=args.split,
                                  measure_speed=not args.no_speed, **hp)
    keys = ("method", "budget", "kind", "overall", "families", "flops_ratio", "speedup", "mean_tokens",
            "keep_rate", "exist_f1", "n")
    out = {k: rec.get(k) for k in keys}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


def _number(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a method at a budget (appends to the results store)")
    p.add_argument("--model", default="testbed")
    p.add_argument("--bench", default="testbed", help="testbed, or a real benchmark name (gqa, pope, ...)")
    p.add_argument("--data", help="benchmark folder for real benchmarks")
    p.add_argument("--method")
    p.add_argument("--budget", type=float)
    p.add_argument("--kind", default="keep", choices=["keep", "flops"])
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--experiment", default="cli")
    p.add_argument("--hp", nargs="*", default=[], metavar="KEY=VALUE", help="method hyper-parameters")
    p.add_argument("--no-speed", action="store_true", help="skip the prefill timing")
    p.add_argument("--list-methods", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval)
