"""`vtr.evaluation.distributed`: `torchrun --nproc_per_node 2 vtr eval ...` on CPU (gloo) gives
exactly the run file and record of a single-process run, and resumes from the parts an interrupted run left.

Both runs evaluate the tiny LLaVA checkpoint of tests/test_hf_runner.py on the POPE fixture with
`--batch-size 1`, so every prediction is the same computation whichever rank makes it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vtr.evaluation import distributed

from vtr.benchmarks.fixtures import write_pope
from tests.runners.test_hf_runner import make_checkpoint, run_cli

TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_shard_is_strided_and_covers_everything():
    items = list(range(9))
    parts = [distributed.shard(items, r, 2) for r in range(2)]
    assert parts == [[0, 2, 4, 6, 8], [1, 3, 5, 7]]
    assert sorted(sum(parts, [])) == items
    assert not distributed.active() and distributed.rank() == 0 and distributed.is_main()


def test_torchrun_two_ranks_equals_one_process(tmp_path):
    (tmp_path / "pope").mkdir()
    ckpt, pope = make_checkpoint(tmp_path / "tiny-llava"), write_pope(tmp_path / "pope")
    args = ["eval", "--model", str(ckpt), "--benchmark", "pope", "--data", str(pope), "--method", "fastv",
            "--budget", "0.5", "--limit", "3", "--max-new-tokens", "3", "--batch-size", "1", "--no-speed",
            "--json"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    single = run_cli(*args, env={**env, "VTR_RESULTS": str(tmp_path / "one")})
    assert single.returncode == 0, single.stderr[-3000:]
    [run_one] = (tmp_path / "one" / "runs").glob("*.jsonl")

    # an interrupted earlier run with 3 ranks left a part holding sample 4's record: it is reused
    runs_two = tmp_path / "two" / "runs"
    runs_two.mkdir(parents=True)
    lines = run_one.read_text().splitlines()
    head, recs = lines[0], lines[1:]  # the header holds the run's fingerprint; a part carries it too
    reused = {**json.loads(recs[4]), "pred": "no, reused from the part"}
    distributed.part_path(runs_two / run_one.name, 1, 3).write_text(head + "\n" + json.dumps(reused) + "\n")

    two = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "vtr.cli", *args],
                         capture_output=True, text=True, timeout=300,
                         env={**env, "OMP_NUM_THREADS": "1", "VTR_RESULTS": str(tmp_path / "two")})
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(two.stdout.strip().splitlines()) == 1  # only rank 0 prints
    gathered = runs_two / run_one.name
    assert sorted(p.name for p in runs_two.iterdir()) == [run_one.name]  # parts merged and removed
    got = gathered.read_text().splitlines()
    assert got[0] == head
    got = got[1:]
    assert [json.loads(x)["id"] for x in got] == [json.loads(x)["id"] for x in recs]  # original order
    assert got[:4] + got[5:] == recs[:4] + recs[5:] and json.loads(got[4]) == reused

    # without the planted record the summaries agree exactly: re-run resumes from the gathered file
    gathered.write_text("\n".join(lines) + "\n")
    (tmp_path / "two" / "records.jsonl").unlink()
    again = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "vtr.cli", *args],
                           capture_output=True, text=True, timeout=300,
                           env={**env, "OMP_NUM_THREADS": "1", "VTR_RESULTS": str(tmp_path / "two")})
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout) == json.loads(single.stdout)
    assert gathered.read_text().splitlines() == lines
    store = (tmp_path / "two" / "records.jsonl").read_text().splitlines()
    assert len(store) == 1  # rank 0 alone appends the record
