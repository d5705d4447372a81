"""Bad input on the command line: exit code 2, one line on stderr naming the problem, nothing written.

Each row of ROWS runs in this process through `vtr.cli.main(argv)`, the function the `vtr` script
calls, with the results store (VTR_RESULTS), the working folder and every output path inside a
temporary folder whose contents are compared before and after. In one process torch and the testbed
model load once, not once per row. A few tests run a real process, for what only a process shows:
- `test_the_console_script_exits_2_with_one_line`: two rows through the installed `vtr` script, one
  refused by argparse (its SystemExit) and one by the command (the code `main` returns): the exit
  code the shell sees, through the script's `sys.exit(main())`;
- `test_vtr_debug_shows_the_traceback`: with VTR_DEBUG=1 the error escapes `main`, and the
  interpreter prints its traceback and exits 1 (`python -m vtr.cli`, what torchrun launches)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vtr import cli
from vtr.errors import InputError

ROWS = [
    # parsed before any work: argparse types and choices
    ("eval --method fastv --budget 0.25 --limit -5", "--limit"),
    ("eval --method fastv --limit 0", "--limit"),
    ("eval --method fastv --batch-size 0", "--batch-size"),
    ("eval --method fastv --batch-size -1", "--batch-size"),
    ("eval --method fastv --hp K", "KEY=VALUE"),
    ("eval --method nope", "--method"),
    ("eval --method fastv --budget 1.5", "--budget"),
    ("eval --method fastv --budget abc", "--budget"),
    ("eval --method fastv --kind tokens", "--kind"),
    ("eval --benchmark nope --method fastv", "--benchmark"),
    ("eval --method fastv --max-new-tokens 0", "--max-new-tokens"),
    ("search gsearch --tolerance -0.1", "--tolerance"),
    ("search gsearch --limit 0", "--limit"),
    ("search gsearch --split train", "--split"),
    ("search gsearch --query first", "--query"),
    ("search psigmoid", "--budget"),
    ("search psigmoid --budget 0", "--budget"),
    ("search psigmoid --budget 0.2 --n-iter 0", "--n-iter"),
    ("bench prefill --keep 0.5,x", "--keep"),
    ("bench prefill --keep 0", "--keep"),
    ("bench prefill --batch 0", "--batch"),
    ("bench prefill --repeats -1", "--repeats"),
    ("testbed eval --split train", "--split"),
    ("testbed eval --model testbed-huge", "--model"),
    ("testbed train --threads 0", "--threads"),
    # checked by the command before it loads a model
    ("eval", "--method is required"),
    ("testbed train --set colour_steps=3 --out {tmp}/train", "colour_steps"),
    ("testbed train --spec text_layers=many --out {tmp}/train", "not a int"),
    ("testbed train --vision-from {tmp}/nowhere --out {tmp}/train", "--vision-from"),
    ("bench prefill --model random-llava-x", "random-llava-"),
    # raised by the API once the model and split are known
    ("eval --model {tmp}/nowhere --method fastv", "does not exist"),
    ("eval --method fastv --hp Q=1 --limit 4 --no-speed", "no hyper-parameter 'Q'"),
    ("eval --method fastv --hp R=abc --limit 4 --no-speed", "must be a number"),
    ("eval --method fastv --split train --limit 4 --no-speed", "unknown testbed split"),
    ("eval --benchmark gqa --method fastv --limit 4", "needs --data"),
    ("eval --method gsearch --limit 4 --no-speed", "run `vtr search gsearch` first"),
    ("search gsearch --limit 8 --out {tmp}/other.trace.jsonl", "tolerance"),
    ("search gsearch --limit 8 --out {tmp}/corrupt.trace.jsonl", "not valid JSON"),
    ("search psigmoid --budget 0.3 --limit 8 --init {tmp}/missing.json", "missing.json"),
    ("search psigmoid --budget 0.05 --limit 8", "budget"),
    # a method hyper-parameter value the method does not accept: raised by the method, named with
    # the values it accepts
    ("eval --method visionzip --hp merge=foo --limit 4 --no-speed", "merge='foo'"),
    ("eval --method visionzip --hp dominant=-3 --limit 4 --no-speed", "dominant=-3"),
    ("eval --method fastv --hp K=99 --limit 4 --no-speed", "K=99"),
    ("eval --method random --hp R=1.5 --limit 4 --no-speed", "R=1.5"),
    ("eval --method uniform --hp K=1.5 --limit 4 --no-speed", "K=1.5"),
    ("eval --method pdrop --hp lam=2 --limit 4 --no-speed", "lam=2"),
    ("eval --method pdrop --hp layers=3,1 --limit 4 --no-speed", "layers='3,1'"),
    ("eval --method prumerge --hp neighbours=some --limit 4 --no-speed", "neighbours='some'"),
    ("eval --method prumerge_plus --hp outlier_share=0 --limit 4 --no-speed", "outlier_share=0"),
    ("eval --method cls_knee --hp detector=elbow --limit 4 --no-speed", "detector='elbow'"),
    ("eval --method cls_knee --hp stage2_layer=99 --limit 4 --no-speed", "stage2_layer=99"),
    ("eval --method cls_knee --hp stage2=2 --limit 4 --no-speed", "stage2=2"),
    ("eval --method sparsevlm --hp setting=100 --limit 4 --no-speed", "setting=100"),
    ("eval --method sparsevlm --hp recycle=1 --limit 4 --no-speed", "recycle=1"),
    ("eval --method vtw --hp K=-1 --limit 4 --no-speed", "K=-1"),
    ("eval --method vtw --hp eta=0.1 --limit 4 --no-speed", "eta=0.1"),
    ("eval --method dyvte --hp threshold=2 --limit 4 --no-speed", "threshold=2"),
    ("eval --method dart --hp pivot_image=-1 --limit 4 --no-speed", "pivot_image=-1"),
    ("eval --method downsample --hp resample=nearest --limit 4 --no-speed", "resample='nearest'"),
    ("eval --method pool --hp window=2 --limit 4 --no-speed", "no hyper-parameter 'window'"),
    ("eval --method divprune --hp ratio=0.1 --limit 4 --no-speed", "no hyper-parameter 'ratio'"),
    # a saved search is replaced only by a run of its own trace
    ("search psigmoid --budget 0.3 --limit 8 --out {tmp}/fresh.trace.jsonl", "holds the search traced in"),
]

# run as a process too (`test_the_console_script_exits_2_with_one_line`): one refused by argparse, one
# by the command
PROCESS_ROWS = ("eval --method nope", "testbed train --set colour_steps=3 --out {tmp}/train")
VTR = Path(sys.executable).with_name("vtr")  # the console script of this environment


def _noise(line: str) -> bool:
    """Progress bars (tqdm: transformers loading weights) and library warnings are not messages."""
    return "it/s]" in line or "%|" in line or "Warning" in line or line.lstrip().startswith("warnings.warn")


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _argv(command: str, root: Path) -> list[str]:
    return [a.replace("{tmp}", str(root)) for a in command.split()]


def _check_one_line(code, stderr: str, named: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip() and not _noise(line)]
    assert code == 2, stderr[-2000:]
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("vtr") and "error:" in lines[0] and named in lines[0], lines[0]
    assert "Traceback" not in stderr


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    header = {"type": "header", "version": 1, "config": {"search": "gsearch", "tolerance": 0.5}}
    (tmp_path / "other.trace.jsonl").write_text(json.dumps(header) + "\n")
    (tmp_path / "corrupt.trace.jsonl").write_text("not json\n" + json.dumps(header) + "\n")
    (tmp_path / "results").mkdir()
    # the result of a P-Sigmoid search traced elsewhere, under the name a `--limit 8` search saves as
    from types import SimpleNamespace

    from vtr.experiments import searches

    name = searches.search_name("psigmoid", "last", searches.SEARCH_SOURCE, 0.3) + \
        searches._variant(SimpleNamespace(limit=8), "val")
    saved = {"plan": [144], "trace_file": "elsewhere.jsonl"}
    (tmp_path / "results" / f"{name}.json").write_text(json.dumps(saved))
    # in this process as in a fresh one: the store in the sandbox, relative paths under it, no debug
    monkeypatch.setenv("VTR_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("VTR_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _main(argv: list[str], capsys) -> tuple[int, str]:
    """`vtr.cli.main(argv)` in this process -> (exit code, stderr); argparse exits by SystemExit. The
    command must leave the VTR_* settings as it found them: the rows that follow run in this process."""
    settings = {k: v for k, v in os.environ.items() if k.startswith("VTR_")}
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert {k: v for k, v in os.environ.items() if k.startswith("VTR_")} == settings
    return code, capsys.readouterr().err


def _process_env(sandbox: Path, **extra: str) -> dict:
    env = {**os.environ, "VTR_RESULTS": str(sandbox / "results"), "OMP_NUM_THREADS": "1", **extra}
    if "VTR_DEBUG" not in extra:
        env.pop("VTR_DEBUG", None)
    return env


def test_the_table_has_at_least_thirty_rows():
    assert len(ROWS) >= 30 and len({r[0] for r in ROWS}) == len(ROWS)
    assert set(PROCESS_ROWS) <= {r[0] for r in ROWS}


@pytest.mark.parametrize("command,named", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_with_exit_code_2_and_writes_nothing(sandbox, capsys, command, named):
    before = _snapshot(sandbox)
    code, stderr = _main(_argv(command, sandbox), capsys)
    _check_one_line(code, stderr, named)
    assert _snapshot(sandbox) == before


@pytest.mark.parametrize("command", PROCESS_ROWS)
def test_the_console_script_exits_2_with_one_line(sandbox, command):
    assert VTR.exists(), f"console script missing: {VTR} (pip install -e .)"
    before = _snapshot(sandbox)
    proc = subprocess.run([str(VTR), *_argv(command, sandbox)], capture_output=True, text=True,
                          env=_process_env(sandbox), timeout=300)
    _check_one_line(proc.returncode, proc.stderr, dict(ROWS)[command])
    assert _snapshot(sandbox) == before


def test_debug_raises_the_error_itself(sandbox, capsys):
    with pytest.raises(InputError, match="colour_steps"):
        _main(["--debug", *_argv(PROCESS_ROWS[1], sandbox)], capsys)


def test_vtr_debug_shows_the_traceback(sandbox):
    proc = subprocess.run([sys.executable, "-m", "vtr.cli", *_argv(PROCESS_ROWS[1], sandbox)],
                          capture_output=True, text=True, env=_process_env(sandbox, VTR_DEBUG="1"),
                          timeout=300)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_the_cli_offers_every_registered_method():
    from vtr import methods
    from vtr.catalogue import REGISTERED
    from vtr.cli import args as cli_args

    assert sorted(REGISTERED) == methods.names()
    assert set(REGISTERED) <= set(cli_args.METHODS)
