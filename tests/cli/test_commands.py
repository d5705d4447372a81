"""The `vtr` console script: installed, --help works and imports no torch, `info --json` is one valid
JSON object, `vtr bench` end to end.

Commands that only parse and report run in this process (`vtr.cli.main`); the console script, what
`--help` imports and the bench runs (a whole command as a user runs it) run as processes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vtr import cli

VTR = Path(sys.executable).with_name("vtr")  # the console script of this environment


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VTR), *args], capture_output=True, text=True, timeout=300)


def test_console_script_help():
    assert VTR.exists(), f"console script missing: {VTR} (pip install -e .)"
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "usage: vtr" in out.stdout
    assert "info" in out.stdout


def test_help_imports_no_torch():
    """Building the parser (every command, `--help`) stays light: torch loads inside the handlers."""
    code = ("import sys\nfrom vtr import cli\ncli.build_parser()\n"
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    import numpy
    import torch
    import transformers

    import vtr

    assert info["vtr"] == vtr.__version__
    assert info["torch"] == torch.__version__
    assert info["transformers"] == transformers.__version__
    assert info["numpy"] == numpy.__version__
    assert info["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert isinstance(info["torch_threads"], int) and info["torch_threads"] >= 1
    assert info["device"] == "cpu" or torch.cuda.is_available()
    assert info["platform"]


def test_unknown_command_fails(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_command_required(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


def test_bench_prefill_json_on_a_sized_random_model():
    out = run("bench", "prefill", "--model", "random-llava-64", "--keep", "0.5,0.125", "--batch", "2",
              "--repeats", "1", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["keep"] for r in rows] == [0.5, 0.125]
    for r in rows:
        assert {"keep", "flops_ratio", "speedup", "efficiency", "overhead", "kv_bytes_ratio"} <= set(r)
        assert r["efficiency"] == pytest.approx(r["speedup"] * r["flops_ratio"], abs=2e-3)
        assert 0 < r["flops_ratio"] < 1 and 0 < r["kv_bytes_ratio"] < 1 and r["overhead"] >= 0
    assert rows[1]["flops_ratio"] < rows[0]["flops_ratio"]
    assert rows[1]["kv_bytes_ratio"] < rows[0]["kv_bytes_ratio"]


def test_bench_prefill_names_a_bad_sized_model(capsys):
    assert cli.main(["bench", "prefill", "--model", "random-llava-big", "--json"]) == 2
    assert "random-llava-<hidden>" in capsys.readouterr().err


@pytest.mark.slow  # prefill and decode of every plan at two answer lengths: over a minute on 2 cores
def test_bench_generate_json_on_a_sized_random_model():
    out = run("bench", "generate", "--model", "random-llava-64", "--keep", "0.5,0.125", "--new-tokens", "2,5",
              "--batch", "2", "--repeats", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["name"], r["new_tokens"]) for r in rows] == [
        (name, n) for n in (2, 5) for name in ("unpruned", "keep=0.5", "keep=0.125")]
    for r in rows:
        assert r["ttft_ms"] > 0 and r["total_ms"] >= r["ttft_ms"] and r["decode_tokens_per_s"] > 0
        assert r["kv_bytes"] > 0 and r["prefill_peak_bytes"] > 0 and r["decode_peak_bytes"] > 0
        if r["name"] != "unpruned":
            for key in ("ttft_speedup", "decode_speedup", "total_speedup"):
                assert r[key]["min"] <= r[key]["median"] <= r[key]["max"]
            # decoding reads the weights and the KV cache: its predicted ratio lies between the two
            assert r["kv_bytes_ratio"] < r["decode_bytes_ratio"] < 1
            assert 0 < r["prefill_flops_ratio"] < 1
    half, eighth = rows[1], rows[2]
    assert eighth["kv_bytes_ratio"] < half["kv_bytes_ratio"]
    assert eighth["decode_peak_ratio"] <= half["decode_peak_ratio"]
