"""`vtr bench prefill|generate`: measured speed and memory next to FLOPs, printed as JSON."""
from __future__ import annotations

import argparse
import json

from .args import MODEL_HELP, benchmark_names, fractions, nonnegative_int, positive_int, positive_ints


def bench_inputs(runner, split, batch: int) -> dict:
    samples = split.samples[:batch]
    return runner.inputs(samples, split)


SIZED = "random-llava-"


def sized_inputs(name: str, batch: int):
    """`random-llava-<hidden>`: a random-init LLaVA of that decoder width (8 layers, 144 vision
    tokens, `vtr.tiny.build_sized`) and a left-padded batch of random prompts: for speed only."""
    from .. import tiny
    from ..errors import InputError

    try:
        hidden = int(name[len(SIZED):])
    except ValueError:
        raise InputError(f"--model {name!r}: expected {SIZED}<hidden>, e.g. {SIZED}512") from None
    model = tiny.build_sized(hidden=hidden)
    inputs = tiny.make_inputs(model, "llava", batch=batch, text_lengths=[8 + i % 8 for i in range(batch)])
    return model, inputs, tiny.n_image_tokens(model, "llava")


def _prefill(args) -> int:
    import torch

    from ..timing import keep_plans, prefill
    from ..models import load, load_split

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model.startswith(SIZED):
        model, inputs, n_vision = sized_inputs(args.model, args.batch)
    else:
        runner = load(args.model)
        split = load_split(args.model, "test", benchmark=args.benchmark, data=args.data)
        inputs = bench_inputs(runner, split, args.batch)
        model, n_vision = runner.model, runner.n_vision
    n_layers = model.config.get_text_config().num_hidden_layers
    keeps = args.keep
    rows = prefill(model, inputs, keep_plans(n_layers, n_vision, keeps, args.layer),
                   repeats=args.repeats, query=args.query, source=args.source)
    for r in rows:
        r.pop("name")
        r["batch"] = args.batch
    print(json.dumps(rows, indent=None if args.json else 2))
    return 0


def _model_and_inputs(args):
    if args.model.startswith(SIZED):
        return sized_inputs(args.model, args.batch)
    from ..models import load, load_split

    runner = load(args.model)
    split = load_split(args.model, "test", benchmark=args.benchmark, data=args.data)
    return runner.model, bench_inputs(runner, split, args.batch), runner.n_vision


def _generate(args) -> int:
    import torch

    from ..timing import generate, keep_plans

    if args.threads:
        torch.set_num_threads(args.threads)
    model, inputs, n_vision = _model_and_inputs(args)
    n_layers = model.config.get_text_config().num_hidden_layers
    rows = generate(model, inputs, keep_plans(n_layers, n_vision, args.keep, args.layer), args.new_tokens,
                    repeats=args.repeats, query=args.query, source=args.source)
    print(json.dumps(rows, indent=None if args.json else 2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed / memory benchmarks (JSON)")
    s = p.add_subparsers(dest="bench_command", required=True)
    b = s.add_parser("prefill", help="prefill speedup, FLOPs ratio, efficiency, overhead, KV bytes per keep rate")
    b.add_argument("--model", default="testbed",
                   help=f"{MODEL_HELP}, or {SIZED}<hidden> (random-init, for speed only)")
    b.add_argument("--benchmark", default="testbed", choices=benchmark_names(), metavar="NAME",
                   help=f"one of: {', '.join(benchmark_names())}")
    b.add_argument("--data")
    b.add_argument("--keep", type=fractions, default=[0.5, 0.25, 0.125], help="comma-separated keep rates in (0, 1]")
    b.add_argument("--layer", type=positive_int, default=1, help="first layer that sees the reduced set")
    b.add_argument("--batch", type=positive_int, default=32)
    b.add_argument("--repeats", type=positive_int, default=7)
    b.add_argument("--query", default="last", choices=["last", "text_mean"])
    b.add_argument("--source", default="previous", choices=["previous", "current"],
                   help="score from the previous layer's attention (FastV) or the current layer's q/k (PDrop)")
    b.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_prefill)
    g = s.add_parser("generate", help="end-to-end generation: time to first token, decode tokens/s, total time per "
                                      "output length, peak memory, KV bytes, pruned vs unpruned")
    g.add_argument("--model", default="testbed", help=f"{MODEL_HELP}, or {SIZED}<hidden> (random-init, for speed only)")
    g.add_argument("--benchmark", default="testbed", choices=benchmark_names(), metavar="NAME",
                   help=f"one of: {', '.join(benchmark_names())}")
    g.add_argument("--data")
    g.add_argument("--keep", type=fractions, default=[0.25], help="comma-separated keep rates in (0, 1]")
    g.add_argument("--new-tokens", type=positive_ints, default=[16, 128, 512],
                   help="comma-separated output lengths (greedy, no early stop)")
    g.add_argument("--layer", type=positive_int, default=1, help="first layer that sees the reduced set")
    g.add_argument("--batch", type=positive_int, default=8)
    g.add_argument("--repeats", type=positive_int, default=3, help="timed rounds per output length (after a warm-up)")
    g.add_argument("--query", default="last", choices=["last", "text_mean"])
    g.add_argument("--source", default="previous", choices=["previous", "current"])
    g.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_generate)
