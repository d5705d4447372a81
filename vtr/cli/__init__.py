"""The `vtr` command line.

One module per command group (`info`, `testbed`, `bench`, `search`, `eval`), each with a function
`register(subparsers)` that adds its subparser and sets `func=<handler>` (the handler receives the
parsed `argparse.Namespace` and returns an exit code). To add a command, write e.g.
`vtr/cli/profile.py` with such a `register` and add it to COMMANDS. Keep module-level imports in
those files light (import torch and friends inside the handler) so that `vtr --help` stays fast.
The CLI imports the package; nothing in the package imports the CLI.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import bench, info, search, testbed
from . import eval as eval_command  # (`eval` would shadow the builtin here)

# in the order `vtr --help` lists them
COMMANDS = (info, testbed, bench, search, eval_command)


# ---------------------------------------------------------------------------------- main
class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block): `vtr eval: error: ... (see --help)`.
    Subcommand parsers are of the same class (argparse's default)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import vtr

    parser = Parser(
        prog="vtr",
        description="Vision-token reduction for multimodal LLMs: tools behind the reproducibility book.")
    parser.add_argument("--version", action="version", version=f"vtr {vtr.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of expected errors too (also VTR_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors a user causes and can correct: printed as one line, exit code 2."""
    from ..errors import InputError

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


