"""`vtr eval`: one method at one budget on a split; prints the record and appends it to the store.

`--model` is "testbed" or a local HuggingFace checkpoint folder (`vtr.runners.hf`),
`--benchmark`/`--data` a real benchmark. Launched by `torchrun --nproc_per_node N vtr eval ...`, the
split is sharded over the N ranks and gathered on rank 0 (`vtr.evaluation.distributed`), which
prints and stores the one record.
"""
from __future__ import annotations

import argparse
import json

from .args import METHODS, MODEL_HELP, benchmark_names, fraction, key_value, positive_int


def _eval(args) -> int:
    from ..evaluation import distributed
    from ..experiments import evaluations
    from ..errors import InputError
    from ..models import load, load_split
    from ..paths import TESTBEDS

    if args.list_methods:
        print("\n".join(METHODS))
        return 0
    if not args.method:
        raise InputError("--method is required (see --list-methods)")
    with distributed.session():  # launched by torchrun: one process group, the split sharded over ranks
        kw = {}
        if args.model not in TESTBEDS:
            kw = {"dtype": args.dtype,
                  "device": distributed.device() if distributed.active() else args.device,
                  "benchmark": None if args.benchmark == "testbed" else args.benchmark,
                  "max_new_tokens": args.max_new_tokens}
            if args.batch_size:
                kw["batch_size"] = args.batch_size
        runner = load(args.model, **kw)
        if args.batch_size and args.model in TESTBEDS:
            runner.batch_size = args.batch_size
        split = load_split(args.model, args.split, args.limit, benchmark=args.benchmark, data=args.data)
        hp = dict(args.hp)
        rec = evaluations.eval_method(runner, split, args.method, args.budget, args.kind, args.seed,
                                      experiment=args.experiment, split_name=args.split,
                                      measure_speed=not args.no_speed, progress=distributed.is_main(),
                                      speed_batch=args.speed_batch, speed_repeats=args.speed_repeats, **hp)
        keys = ("method", "budget", "kind", "overall", "families", "flops_ratio", "speedup", "mean_tokens",
                "keep_rate", "exist_f1", "n", "run_file")  # run_file: the per-question answers
        out = {k: rec.get(k) for k in keys}
        out.update({k: rec[k] for k in ("model", "benchmark", "metrics") if k in rec
                    and rec["model"] not in TESTBEDS})
        if distributed.is_main():
            print(json.dumps(out, indent=None if args.json else 2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a method at a budget (appends to the results store)")
    p.add_argument("--model", default="testbed", help=MODEL_HELP)
    p.add_argument("--benchmark", default="testbed", choices=benchmark_names(), metavar="NAME",
                   help=f"one of: {', '.join(benchmark_names())} (real benchmarks need --data)")
    p.add_argument("--data", help="benchmark folder for real benchmarks")
    p.add_argument("--method", choices=METHODS, metavar="METHOD", help=f"one of: {', '.join(METHODS)}")
    p.add_argument("--budget", type=fraction, help="in (0, 1]: mean keep rate (--kind keep) or FLOPs ratio")
    p.add_argument("--kind", default="keep", choices=["keep", "flops"])
    p.add_argument("--split", default="test",
                   help="testbed: val or test; real benchmarks: the reader's split")
    p.add_argument("--limit", type=positive_int, help="evaluate the first N samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--experiment", default="cli")
    p.add_argument("--hp", nargs="*", default=[], type=key_value, metavar="KEY=VALUE",
                   help="method hyper-parameters")
    p.add_argument("--no-speed", action="store_true", help="skip the prefill timing")
    p.add_argument("--speed-batch", type=positive_int, default=8, help="samples in the timed prefill batch")
    p.add_argument("--speed-repeats", type=positive_int, default=3,
                   help="interleaved rounds of the prefill timing")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="checkpoint folders: weights dtype (auto = the checkpoint's own)")
    p.add_argument("--device", help="checkpoint folders: cpu, cuda or cuda:N (default: cuda if available); "
                                    "under torchrun each rank uses cuda:LOCAL_RANK")
    p.add_argument("--max-new-tokens", type=positive_int, default=128,
                   help="checkpoint folders: greedy answer length cap")
    p.add_argument("--batch-size", type=positive_int,
                   help="samples per batch (default: 64 testbed, 16 checkpoints)")
    p.add_argument("--list-methods", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval)
