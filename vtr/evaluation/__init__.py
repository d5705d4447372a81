"""Evaluating a runner under a policy: the resumable loop (`loop`), its per-sample run files
(`run_files`), and the same loop sharded over `torchrun` ranks (`distributed`)."""
from .loop import cost, evaluate
from .run_files import read_run, run_path, run_tag, start_run

__all__ = ["cost", "evaluate", "read_run", "run_path", "run_tag", "start_run"]
