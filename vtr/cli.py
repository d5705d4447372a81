"""The `vtr` command line.

Each command lives in a function `register(subparsers)` that adds one subparser and sets
`func=<handler>` (the handler receives the parsed `argparse.Namespace` and returns an exit code).
To add a command, write e.g. `vtr/cli_testbed.py` with such a `register` and append
"vtr.cli_testbed:register" to COMMANDS. Keep module-level imports in those files light (import
torch and friends inside the handler) so that `vtr --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from typing import Callable, Sequence

COMMANDS: list[str] = [
    "vtr.cli:register_info",
    "vtr.cli_testbed:register",
    "vtr.cli_bench:register",
    "vtr.cli_search:register",
    "vtr.cli_eval:register",
]


def _load(spec: str) -> Callable[[argparse._SubParsersAction], None]:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------------- vtr info
def environment_info() -> dict:
    """Versions and compute resources this process sees (what the book's first chapter prints)."""
    import numpy
    import torch
    import transformers

    import vtr

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = "cpu"
    return {
        "vtr": vtr.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": device,
        "platform": platform.platform(),
    }


def _info(args: argparse.Namespace) -> int:
    info = environment_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print versions, threads and device",
                              description="Print the versions, torch threads and device vtr runs with.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_info)


# ---------------------------------------------------------------------------------- main
class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block): `vtr eval: error: ... (see --help)`.
    Subcommand parsers are of the same class (argparse's default)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import vtr

    parser = Parser(
        prog="vtr", description="Vision-token reduction for multimodal LLMs: tools behind the reproducibility book.")
    parser.add_argument("--version", action="version", version=f"vtr {vtr.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of expected errors too (also VTR_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for spec in COMMANDS:
        _load(spec)(subparsers)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors a user causes and can correct: printed as one line, exit code 2."""
    from .errors import InputError

    return (InputError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. An expected error (`expected_errors`) prints `vtr: error: ...` on one line
    and returns 2, like argparse's own errors; `--debug` or VTR_DEBUG=1 re-raises it with its
    traceback. Any other exception is a bug and propagates with its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("VTR_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except expected_errors() as err:
        if debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
