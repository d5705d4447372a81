"""`vtr bench` on published architectures with random weights, `--compare published`, `vtr bench paper`.

Refused options run in this process (`vtr.cli.main`); the measurements run the `vtr` script end to end."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.cli.test_commands import VTR, run
from vtr import archs, cli

FAST = ("--layers", "2", "--vision-layers", "1", "--batch", "1", "--repeats", "1", "--warmup", "0", "--json")


def test_unknown_architecture_is_one_line_naming_the_known_ones(capsys):
    assert cli.main(["bench", "prefill", "--model", "arch:unknown", "--json"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(f"arch:{n}" in lines[0] for n in archs.names())


def test_layers_need_an_architecture(capsys):
    assert cli.main(["bench", "prefill", "--model", "random-llava-64", "--layers", "1", "--json"]) == 2
    assert "--layers applies to --model arch:<name> only" in capsys.readouterr().err


@pytest.mark.slow
def test_llava_1_5_7b_reports_its_width_and_tokens():
    out = run("bench", "prefill", "--model", "arch:llava-1.5-7b", "--keep", "0.25", *FAST)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    spec = archs.spec("llava-1.5-7b")
    v = spec["config"]["vision_config"]
    assert row["hidden_size"] == spec["config"]["text_config"]["hidden_size"]
    assert row["n_vision"] == (v["image_size"] // v["patch_size"]) ** 2
    assert row["n_layers"] == 2 and "random" in row["weights"] and row["device"] == "cpu"
    assert row["keep"] == 0.25 and row["flops_ratio"] < 1 and 0 < row["prefill_peak_ratio"] <= 1.001


@pytest.mark.slow
def test_llava_next_prompt_holds_the_anyres_count_of_its_image():
    # the bench path is llava-1.5-7b's (above); a 3000-token prefill does not fit a CPU test's time
    model = archs.build("llava-next-vicuna-7b", layers=1, vision_layers=1)
    inputs, n = archs.prompt(model, "llava-next-vicuna-7b", batch=1)
    side = archs.spec("llava-next-vicuna-7b")["config"]["vision_config"]["image_size"] // 14
    assert n > 4 * side * side  # the base image and four tiles at least
    assert int((inputs["input_ids"] == model.config.image_token_index).sum()) == n


def test_compare_published_on_a_sized_random_model():
    out = run("bench", "prefill", "--model", "random-llava-64", "--compare", "published", "--keep", "0.25",
              "--layer", "2", "--batch", "2", "--repeats", "1", "--warmup", "0", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["same_tokens"] is True and res["device"] == "cpu"
    assert [r["strategy"] for r in res["rows"]] == ["vtr", "fastv_eager", "rerun_hook"]
    for r in res["rows"]:
        assert {"speedup", "efficiency", "prefill_peak_bytes", "prefill_peak_ratio"} <= set(r)


@pytest.mark.slow
def test_paper_command_runs_end_to_end_on_cpu(tmp_path):
    path = tmp_path / "paper.json"
    # seven plans, prefill and generation on a 7B-wide decoder: minutes on a loaded 2-core CPU
    args = ["bench", "paper", "--models", "llava-1.5-7b", "--batch-one", "--layers", "2",
            "--vision-layers", "2", "--new-tokens", "2", "--repeats", "1", "--warmup", "0",
            "--psigmoid", "0.5,10,0.05", "--gsearch-rates", "1,1,0.5,0.25", "--out", str(path), "--json"]
    out = subprocess.run([str(VTR), *args], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr
    res = json.loads(path.read_text())
    assert {"device", "date", "command", "vtr_version"} <= set(res)
    (setup,) = res["results"]
    names = [p["name"] for p in setup["prefill"]]
    assert any(n.startswith("FastV") for n in names) and any(n.startswith("VisionZip") for n in names)
    assert "G-Search (searched shape)" in names
    # two decoder layers cannot reach P-Sigmoid's budget (layer 0 keeps every token): skipped, said why
    assert "P-Sigmoid 0.125" in names or any(s.startswith("P-Sigmoid: ") for s in setup["skipped"])
    assert {g["new_tokens"] for g in setup["generate"]} == {2}
    assert path.with_suffix(".png").stat().st_size > 0
