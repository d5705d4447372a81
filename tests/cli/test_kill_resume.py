"""SIGKILL mid-run, then the same command again: the same final result as an uninterrupted run, and
no finished work done twice (each sample / plan is in the run file / trace exactly once, and the
lines written before the kill are kept byte for byte).

Real processes (a SIGKILL needs one) running real evaluations and searches: marked slow."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EVAL = ["eval", "--method", "fastv", "--budget", "0.25", "--limit", "400", "--batch-size", "4", "--no-speed",
        "--json"]
PSIG = ["search", "psigmoid", "--budget", "0.5", "--limit", "96", "--n-iter", "5", "--json"]


def _env(results: Path) -> dict:
    env = {**os.environ, "VTR_RESULTS": str(results), "OMP_NUM_THREADS": "1"}
    env.pop("VTR_DEBUG", None)
    return env


def _run(args, results: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vtr.cli", *args], capture_output=True, text=True,
                          env=_env(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _kill_when(args, results: Path, ready) -> None:
    """Start the command and SIGKILL it as soon as `ready()` holds (it must not finish first)."""
    proc = subprocess.Popen([sys.executable, "-m", "vtr.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(results))
    try:
        deadline = time.time() + 600
        while not ready():
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_eval_killed_and_rerun_gives_the_same_record_without_repeating_samples(tmp_path):
    clean = _run(EVAL, tmp_path / "clean")
    results = tmp_path / "killed"

    def run_file():
        files = list((results / "runs").glob("*.jsonl")) if (results / "runs").exists() else []
        return files[0] if files else None

    _kill_when(EVAL, results, lambda: run_file() is not None and len(_lines(run_file())) >= 1 + 3 * 4)
    before = _lines(run_file())
    assert 1 + 3 * 4 <= len(before) < 1 + 400  # header + some batches, not all
    resumed = _run(EVAL, results)
    after = _lines(run_file())
    ids = [json.loads(line)["id"] for line in after[1:]]
    assert len(ids) == len(set(ids)) == 400  # every sample once: none evaluated twice
    kept = [line for line in before if line.endswith("}")]  # a torn last line is dropped, not kept
    assert after[:len(kept)] == kept
    assert resumed == clean


def test_psigmoid_killed_and_rerun_gives_the_same_plan_without_rescoring(tmp_path):
    clean = _run([*PSIG, "--out", str(tmp_path / "clean.jsonl")], tmp_path / "r1")
    trace = tmp_path / "killed.jsonl"
    args = [*PSIG, "--out", str(trace)]
    _kill_when(args, tmp_path / "r2", lambda: len(_lines(trace)) >= 1 + 3)
    before = _lines(trace)
    resumed = _run(args, tmp_path / "r2")
    after = _lines(trace)
    keys = [json.loads(line)["key"] for line in after[1:]]
    assert len(keys) == len(set(keys))  # no plan scored twice
    assert after[:len(before) - 1] == before[:-1]
    kept = sum(line.endswith("}") for line in before[1:])  # finished evaluations before the kill
    assert resumed.pop("new_evaluations") == clean["evaluations"] - kept
    assert clean.pop("new_evaluations") == clean["evaluations"] == len(after) - 1
    # the plan is saved where `vtr eval --method psigmoid` reads it: each run's own results folder
    for out, folder in ((clean, "r1"), (resumed, "r2")):
        saved = Path(out.pop("saved"))
        assert saved.is_relative_to(tmp_path / folder)
        assert json.loads(saved.read_text())["plan"] == out["plan"]
    assert resumed == clean
    again = _run(args, tmp_path / "r2")
    assert again.pop("new_evaluations") == 0  # an identical rerun repeats nothing
    again.pop("saved")
    assert again == clean
