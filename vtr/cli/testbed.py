"""`vtr testbed train` and `vtr testbed eval`: the embedded testbed."""
from __future__ import annotations

import argparse
import json

from .args import positive_int
from ..paths import TESTBEDS


def _train(args) -> int:
    from pathlib import Path

    from ..paths import testbed_model_dir
    from ..testbed.train import train

    out = Path(args.out) if args.out else testbed_model_dir()
    meta = train(out, recipe_from_args(args), spec_from_args(args), vision_from=args.vision_from)
    print(json.dumps({"out": str(out), "seconds": meta["seconds"]}))
    return 0


def recipe_from_args(args):
    """The Recipe of a parsed `vtr testbed train` command line; options left out keep the Recipe's
    defaults (the shipped recipe)."""
    from ..testbed.recipe import Recipe

    given = {k: v for k, v in (("vision_norm", args.vision_norm), ("family_phases", args.family_phases))
             if v is not None}
    return Recipe(seed=args.seed, threads=args.threads, **given, **recipe_overrides(args.set or []))


def spec_from_args(args):
    """The TestbedSpec of a parsed `vtr testbed train` command line (`--spec field=value`)."""
    from ..testbed.model import TestbedSpec

    return TestbedSpec(**recipe_overrides(args.spec or [], TestbedSpec, "--spec"))


def recipe_overrides(pairs: list[str], cls=None, option: str = "--set") -> dict:
    """`field=value` pairs as keyword arguments of dataclass `cls` (default Recipe), typed like the
    field's default."""
    from dataclasses import fields

    from ..errors import InputError
    from ..testbed.recipe import Recipe

    known = {f.name: type(f.default) for f in fields(cls or Recipe)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise InputError(f"{option} {pair!r}: expected field=value with field one of {sorted(known)}")
        try:
            out[key] = known[key](value)
        except ValueError:
            raise InputError(f"{option} {pair!r}: {value!r} is not a {known[key].__name__}") from None
    return out


def _eval(args) -> int:
    from ..models import load, load_split
    from ..testbed.score import accuracy

    res = accuracy(load(args.model), load_split(args.model, args.split, args.limit), args.batch_size)
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


def _shipped_duration() -> str:
    """' (the shipped checkpoint took N minutes on T threads)', read from its training.json; '' if absent."""
    from ..paths import testbed_model_dir

    try:
        meta = json.loads((testbed_model_dir() / "training.json").read_text())
        return (f" (the shipped checkpoint took {meta['seconds'] / 60:.0f} minutes on "
                f"{meta['recipe']['threads']} threads)")
    except (OSError, KeyError, ValueError):
        return ""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("testbed", help="train or evaluate the embedded testbed model")
    s = p.add_subparsers(dest="testbed_command", required=True)
    t = s.add_parser("train", help=f"run the staged training recipe{_shipped_duration()}; "
                                   "an interrupted run of the same recipe resumes from OUT/checkpoint")
    t.add_argument("--out", help="output folder (default data/testbed/model)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=2)
    t.add_argument("--vision-norm", type=float,
                   help="weight of stage 0's feature-scale loss (keeps the features LLaVA's projector reads "
                        "at a LayerNorm's scale; 0 = off; default: the shipped recipe's)")
    t.add_argument("--family-phases",
                   help="stage 1 opens with these phases, e.g. attribute:200,position:150 (families joined "
                        "by '+', then steps), then asks every family; '' = none; default: the shipped "
                        "recipe's")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="any other field of vtr.testbed.recipe.Recipe, e.g. --set curriculum=0 (repeatable)")
    t.add_argument("--spec", action="append", metavar="FIELD=VALUE",
                   help="a size of vtr.testbed.model.TestbedSpec, e.g. --spec text_layers=16 (repeatable)")
    t.add_argument("--vision-from", metavar="MODEL",
                   help="reuse the vision tower of this finished checkpoint (a testbed name or a folder) "
                        "instead of running stage 0; refused unless its stage 0 was the same")
    t.set_defaults(func=_train)
    e = s.add_parser("eval", help="accuracy per family, with and without the image")
    e.add_argument("--model", default="testbed", choices=list(TESTBEDS), help="which shipped testbed")
    e.add_argument("--split", default="test", choices=["val", "test"])
    e.add_argument("--limit", type=positive_int)
    e.add_argument("--batch-size", type=positive_int, default=64)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_eval)
