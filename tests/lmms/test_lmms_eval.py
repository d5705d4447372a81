"""lmms-eval's model `vtr` run through lmms-eval's own entry point (`python -m lmms_eval`) on the
testbed task over the local JSONL split, unpruned and with FastV at 0.25: its accuracy, FLOPs ratio
and every answer equal `vtr eval`'s on the same questions. Only `make test-lmms` runs these (its
venv has lmms-eval); elsewhere the module is skipped."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vtr.integrations.lmms import TASKS
from vtr.models import load_split

pytest.importorskip("lmms_eval")

LIMIT = 96        # the first 96 questions of the val split: two batches of 64 and 32
BATCH = 64        # `vtr eval`'s batch on the testbed
CASES = [("full", None), ("fastv", 0.25)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Offline, with the results store, run files and every cache in a fresh folder."""
    root = tmp_path_factory.mktemp("lmms")
    e = dict(os.environ, VTR_RESULTS=str(root / "results"), HF_HOME=str(root / "hf"),
             HF_DATASETS_CACHE=str(root / "hf" / "datasets"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
             TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
    e.pop("VTR_SMOKE", None)
    return root, e


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, \
        f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def model_args(method: str, budget) -> str:
    return "pretrained=testbed" + ("" if budget is None else f",method={method},budget={budget},kind=keep")


def lmms_run(method: str, budget, env) -> tuple[dict, dict[str, str]]:
    """lmms-eval's results JSON and the answer of each question id (its per-sample log)."""
    root, e = env
    out = root / f"lmms-{method}"
    run([sys.executable, "-m", "lmms_eval", "--model", "vtr", "--model_args", model_args(method, budget),
         "--tasks", "vtr_testbed_val", "--include_path", str(TASKS), "--limit", str(LIMIT),
         "--batch_size", str(BATCH), "--output_path", str(out), "--log_samples", "--verbosity", "WARNING"], e)
    [results] = glob.glob(str(out / "**" / "*results.json"), recursive=True)
    [samples] = glob.glob(str(out / "**" / "*vtr_testbed_val*.jsonl"), recursive=True)
    questions = load_split("testbed", "val", LIMIT).samples  # what `vtr eval --limit` asks, in order
    answers = {}
    for line in Path(samples).read_text().splitlines():
        rec = json.loads(line)
        sample = questions[rec["doc_id"]]
        assert (rec["input"], rec["target"]) == (sample.question, sample.answer), "not the same question"
        resp = rec["filtered_resps"]
        answers[sample.id] = resp[0] if isinstance(resp, list) else resp
    return json.loads(Path(results).read_text()), answers


def vtr_run(method: str, budget, env) -> tuple[dict, dict[str, str]]:
    """`vtr eval`'s printed record and the answer of each question id (its run file)."""
    root, e = env
    cmd = [sys.executable, "-m", "vtr.cli", "eval", "--model", "testbed", "--method", method, "--split",
           "val", "--limit", str(LIMIT), "--no-speed", "--json", "--experiment", "lmms-check"]
    if budget is not None:
        cmd += ["--budget", str(budget), "--kind", "keep"]
    rec = json.loads(run(cmd, e).stdout.strip().splitlines()[-1])
    runfile = root / "results" / rec["run_file"]  # the record names its run file
    answers = {r["id"]: r["pred"] for r in map(json.loads, runfile.read_text().splitlines()) if "id" in r}
    return rec, answers


@pytest.fixture(scope="module")
def runs(env):
    return {method: (lmms_run(method, budget, env), vtr_run(method, budget, env)) for method, budget in CASES}


@pytest.mark.parametrize("method", [m for m, _ in CASES])
def test_accuracy_equals_vtr_eval(runs, method):
    (results, _), (rec, _) = runs[method]
    acc = results["results"]["vtr_testbed_val"]["accuracy,none"]
    assert rec["n"] == LIMIT
    assert acc == rec["overall"], f"{method}: lmms-eval {acc} vs vtr eval {rec['overall']}"


@pytest.mark.parametrize("method", [m for m, _ in CASES])
def test_every_answer_equals_vtr_eval(runs, method):
    (_, lmms_answers), (_, vtr_answers) = runs[method]
    assert len(lmms_answers) == LIMIT and lmms_answers.keys() == vtr_answers.keys()
    differ = [i for i in vtr_answers if lmms_answers[i] != vtr_answers[i]]
    assert not differ, f"{method}: {len(differ)} answers differ, e.g. {differ[:3]}"


@pytest.mark.parametrize("method", [m for m, _ in CASES])
def test_flops_ratio_reported_and_equal(runs, method):
    (results, _), (rec, _) = runs[method]
    reported = results["throughput"]["avg_vtr_flops_ratio"]
    assert reported == pytest.approx(rec["flops_ratio"], rel=1e-12, abs=0)
    assert results["throughput"]["avg_vtr_keep_rate"] == pytest.approx(rec["keep_rate"], rel=1e-9)
    assert results["throughput"]["avg_vtr_samples"] == LIMIT
    if method == "full":
        assert reported == 1.0
    else:
        assert reported < 0.9  # FastV at keep 0.25 really pruned

