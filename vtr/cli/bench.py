"""`vtr bench prefill|generate|paper`: measured speed and memory next to FLOPs, printed as JSON.

`--model arch:<name>` is a published architecture with random weights (`vtr.archs`): speed and
memory only. `vtr bench prefill --compare published` times FastV's published implementation
strategies beside vtr's engine (`vtr.published`); `vtr bench paper` measures the main paper's
plans at paper scale (`vtr.paper_speed`) into one JSON file and one figure."""
from __future__ import annotations

import argparse
import json

from ..errors import InputError
from .args import MODEL_HELP, benchmark_names, fractions, nonnegative_int, positive_int, positive_ints


def bench_inputs(runner, split, batch: int) -> dict:
    samples = split.samples[:batch]
    return runner.inputs(samples, split)


SIZED = "random-llava-"


def sized_inputs(name: str, batch: int):
    """`random-llava-<hidden>[-<tokens>]`: a random-init LLaVA of that decoder width (8 layers,
    `vtr.tiny.build_sized`) with 144 vision tokens or the given square number of them (8-pixel
    patches), and a left-padded batch of random prompts: for speed only."""
    from .. import tiny

    hidden, _, tokens = name[len(SIZED):].partition("-")
    side = round(int(tokens) ** 0.5) if tokens.isdigit() else 0
    if not hidden.isdigit() or (tokens and (not side or side * side != int(tokens))):
        raise InputError(f"--model {name!r}: expected {SIZED}<hidden>[-<square number of vision tokens>], "
                         f"e.g. {SIZED}512 or {SIZED}512-576")
    model = tiny.build_sized(hidden=int(hidden), **({"image_size": 8 * side} if tokens else {}))
    inputs = tiny.make_inputs(model, "llava", batch=batch, text_lengths=[8 + i % 8 for i in range(batch)])
    return model, inputs, tiny.n_image_tokens(model, "llava")


ARCH = "arch:"
FASTV_K = 2  # FastV's published K: --compare's default --layer


def _model_and_inputs(args):
    """(model, inputs, vision tokens per sample, what the JSON says about the model)."""
    from ..models import load, load_arch, load_split
    from ..timing import device_info

    if args.model.startswith(ARCH):
        model, inputs, n_vision, desc = load_arch(args.model, args.batch, args.layers, args.vision_layers,
                                                  args.dtype, args.device)
    else:
        for option in ("layers", "vision_layers"):
            if getattr(args, option) is not None:
                raise InputError(f"--{option.replace('_', '-')} applies to --model {ARCH}<name> only")
        if args.model.startswith(SIZED):
            model, inputs, n_vision = sized_inputs(args.model, args.batch)
        else:
            runner = load(args.model)
            split = load_split(args.model, "test", benchmark=args.benchmark, data=args.data)
            model, inputs, n_vision = runner.model, bench_inputs(runner, split, args.batch), runner.n_vision
        desc = {"model": args.model, "n_vision": n_vision,
                "hidden_size": model.config.get_text_config().hidden_size}
    return model, inputs, n_vision, {**desc, **device_info(next(model.parameters()).device)}


def _prefill(args) -> int:
    import torch

    from ..timing import keep_plans, prefill

    if args.threads:
        torch.set_num_threads(args.threads)
    model, inputs, n_vision, desc = _model_and_inputs(args)
    if args.compare == "published":
        from ..published import compare

        out = compare(model, inputs, n_vision, args.keep, layer=args.layer or FASTV_K, repeats=args.repeats,
                      warmup=args.warmup)
        print(json.dumps({**desc, **out}, indent=None if args.json else 2))
        return 0
    n_layers = model.config.get_text_config().num_hidden_layers
    plans = keep_plans(n_layers, n_vision, args.keep, args.layer or 1)
    rows = prefill(model, inputs, plans, repeats=args.repeats, warmup=args.warmup, query=args.query,
                   source=args.source, memory=args.model.startswith(ARCH))
    for r in rows:
        r.pop("name")
        r["batch"] = args.batch
        r.update(desc)
    print(json.dumps(rows, indent=None if args.json else 2))
    return 0


def _generate(args) -> int:
    import torch

    from ..timing import generate, keep_plans

    if args.threads:
        torch.set_num_threads(args.threads)
    model, inputs, n_vision, desc = _model_and_inputs(args)
    n_layers = model.config.get_text_config().num_hidden_layers
    rows = generate(model, inputs, keep_plans(n_layers, n_vision, args.keep, args.layer), args.new_tokens,
                    repeats=args.repeats, query=args.query, source=args.source)
    for r in rows:
        r.update(desc)
    print(json.dumps(rows, indent=None if args.json else 2))
    return 0


def _paper(args) -> int:
    import sys
    from pathlib import Path

    import torch

    from .. import paper_speed
    from ..models import load_arch

    if args.threads:
        torch.set_num_threads(args.threads)
    setups = tuple((name, tuple(args.batches) if name == "llava-1.5-7b" else bs)
                   for name, bs in paper_speed.SETUPS if args.models is None or name in args.models)
    if args.batch_one:
        setups = tuple((name, (1,)) for name, _ in setups)

    def load(name, batch):
        return load_arch(ARCH + name, batch, args.layers, args.vision_layers, args.dtype, args.device)

    result = paper_speed.run(load, setups, args.new_tokens, repeats=args.repeats, warmup=args.warmup,
                             gsearch_rates=args.gsearch_rates, psigmoid=args.psigmoid,
                             log=lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    fig = paper_speed.figure(result)
    fig.savefig(out.with_suffix(".png"), dpi=150)
    print(json.dumps({"json": str(out), "figure": str(out.with_suffix(".png")),
                      "rows": paper_speed.table(result)}, indent=None if args.json else 2))
    return 0


def _arch_options(p) -> None:
    p.add_argument("--layers", type=positive_int, help=f"keep the first N decoder layers ({ARCH}<name> only)")
    p.add_argument("--vision-layers", type=positive_int,
                   help=f"keep the first N vision-tower layers ({ARCH}<name> only; for CPU tests)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help=f"auto: bfloat16 on a GPU, float32 on CPU ({ARCH}<name> only)")
    p.add_argument("--device", default="cpu", help=f"cpu, cuda or cuda:<index> ({ARCH}<name> only)")
    p.add_argument("--warmup", type=nonnegative_int, default=2, help="untimed rounds before the timed ones")


MODEL_CHOICES = f"{MODEL_HELP}, {SIZED}<hidden> (random-init, for speed only), or {ARCH}<name>: " \
                "a published architecture with random weights"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed / memory benchmarks (JSON)")
    s = p.add_subparsers(dest="bench_command", required=True)
    b = s.add_parser("prefill",
                     help="prefill speedup, FLOPs ratio, efficiency, overhead, KV bytes per keep rate")
    b.add_argument("--model", default="testbed", help=MODEL_CHOICES)
    b.add_argument("--benchmark", default="testbed", choices=benchmark_names(), metavar="NAME",
                   help=f"one of: {', '.join(benchmark_names())}")
    b.add_argument("--data")
    b.add_argument("--keep", type=fractions, default=[0.5, 0.25, 0.125],
                   help="comma-separated keep rates in (0, 1]")
    b.add_argument("--layer", type=positive_int,
                   help=f"first layer that sees the reduced set (default 1; with --compare, FastV's "
                        f"K={FASTV_K})")
    b.add_argument("--batch", type=positive_int, default=32)
    b.add_argument("--repeats", type=positive_int, default=7)
    b.add_argument("--query", default="last", choices=["last", "text_mean"])
    b.add_argument("--source", default="previous", choices=["previous", "current"],
                   help="score from the previous layer's attention (FastV) or the current layer's q/k "
                        "(PDrop)")
    b.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    b.add_argument("--compare", choices=["published"],
                   help="published: FastV's eager strategy and the re-run hook strategy beside vtr's engine, "
                        "each keeping the same tokens (FastV's K = --layer)")
    _arch_options(b)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_prefill)
    g = s.add_parser("generate", help="end-to-end generation: time to first token, decode tokens/s, total "
                                      "time per output length, peak memory, KV bytes, pruned vs unpruned")
    g.add_argument("--model", default="testbed", help=MODEL_CHOICES)
    g.add_argument("--benchmark", default="testbed", choices=benchmark_names(), metavar="NAME",
                   help=f"one of: {', '.join(benchmark_names())}")
    g.add_argument("--data")
    g.add_argument("--keep", type=fractions, default=[0.25], help="comma-separated keep rates in (0, 1]")
    g.add_argument("--new-tokens", type=positive_ints, default=[16, 128, 512],
                   help="comma-separated output lengths (greedy, no early stop)")
    g.add_argument("--layer", type=positive_int, default=1, help="first layer that sees the reduced set")
    g.add_argument("--batch", type=positive_int, default=8)
    g.add_argument("--repeats", type=positive_int, default=3,
                   help="timed rounds per output length (after a warm-up)")
    g.add_argument("--query", default="last", choices=["last", "text_mean"])
    g.add_argument("--source", default="previous", choices=["previous", "current"])
    g.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    _arch_options(g)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_generate)
    a = s.add_parser("paper", help="the main paper's plans on llava-1.5-7b (batch 1 and 8) and "
                                   "llava-next-vicuna-7b (batch 1), random weights: prefill and generation, "
                                   "one JSON file and one figure")
    a.add_argument("--out", default="data/paper_speed/paper_speed.json",
                   help="JSON file to write (the figure goes beside it, .png)")
    a.add_argument("--batches", type=positive_ints, default=[1, 8], help="llava-1.5-7b's batch sizes")
    a.add_argument("--models", type=lambda t: t.split(","), metavar="NAMES",
                   help="a comma-separated subset of: llava-1.5-7b, llava-next-vicuna-7b (default: both)")
    a.add_argument("--batch-one", action="store_true", help="batch 1 only (the CPU check)")
    a.add_argument("--new-tokens", type=positive_ints, default=[16, 128])
    a.add_argument("--repeats", type=positive_int, default=3)
    a.add_argument("--gsearch-rates", type=fractions,
                   help="G-Search's searched per-layer keep rates (any depth)")
    a.add_argument("--psigmoid", type=_abk,
                   help="P-Sigmoid's fitted a,k,b (its midpoint is solved for 0.125)")
    a.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)")
    _arch_options(a)
    a.set_defaults(warmup=1)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_paper)


def _abk(text: str) -> tuple[float, float, float]:
    import argparse

    try:
        a, k, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not three numbers a,k,b") from None
    return a, k, b
