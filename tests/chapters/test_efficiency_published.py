"""Chapter 8's implementation table and its paper-scale section (`vtr.chapters.efficiency`)."""
from __future__ import annotations

import json

from vtr.chapters import efficiency
from vtr.published import STRATEGIES


def _fake_compare(n_vision: int) -> dict:
    rows = [{"keep": k, "strategy": s, "speedup": 1.0 + i, "efficiency": 0.5 + i,
             "prefill_peak_ratio": 0.1 * (i + 1), "same_tokens": True}
            for k in efficiency.KEEPS for i, s in enumerate(STRATEGIES)]
    return {"rows": rows, "same_tokens": True, "n_vision": n_vision}


def test_published_table_has_one_row_per_model_and_keep_with_every_strategy():
    result = {"models": {"testbed": _fake_compare(64), "random": _fake_compare(576)}, "batch": 2}
    df = efficiency.published_table(result)
    assert len(df) == 2 * len(efficiency.KEEPS)
    for name in efficiency.STRATEGY_NAMES.values():
        assert {f"{name}: speedup", f"{name}: efficiency", f"{name}: peak memory"} <= set(df.columns)
    row = df[(df["model"] == "random") & (df["keep"] == 0.25)].iloc[0]
    assert row["vision tokens"] == 576 and row["hook re-running layer K-1: speedup"] == 3.0


def test_paper_speed_is_absent_without_a_measurement_and_read_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("VTR_DATA", str(tmp_path / "data"))
    assert efficiency.paper_speed() is None
    path = tmp_path / "data" / efficiency.PAPER_SPEED
    path.parent.mkdir(parents=True)
    result = {"device": {"device": "cuda:0", "device_name": "GPU"}, "date": "d", "command": "vtr bench paper",
              "vtr_version": "0", "results": [{
                  "model": "arch:llava-1.5-7b", "n_layers": 32, "n_vision": 576, "batch": 1,
                  "prefill": [{"name": "FastV", "speedup": 2.0, "flops_ratio": 0.5,
                               "prefill_peak_ratio": 0.6}],
                  "generate": [{"name": "FastV", "new_tokens": 16, "total_speedup": {"median": 1.5},
                                "decode_peak_ratio": 0.9}]}]}
    path.write_text(json.dumps(result))
    got = efficiency.paper_speed()
    assert got["command"] == "vtr bench paper"
    (row,) = efficiency.paper_speed_table(got).to_dict("records")
    assert row["prefill speedup"] == 2.0 and row["total speedup (16 tokens)"] == 1.5


def test_paper_speed_section_is_a_table_with_or_without_a_measurement():
    """Chapter 8 always shows a numbered table: the measurement with readable headers, or one row
    saying none exists; the sentence above names the device and command, not the build's path."""
    (note,) = efficiency.paper_speed_frame(None)["note"]
    assert "paper_speed.json" in note and "missing" in efficiency.paper_speed_source(None)
    result = {"device": {"device": "cuda:0", "device_name": "H100"}, "date": "d",
              "command": "vtr bench paper", "vtr_version": "0",
              "path": "/abs/data/paper_speed/paper_speed.json", "results": [{
                  "model": "arch:llava-1.5-7b", "n_layers": 32, "n_vision": 576, "batch": 1,
                  "prefill": [{"name": "FastV", "speedup": 2.0, "flops_ratio": 0.5}], "generate": []}]}
    frame = efficiency.paper_speed_frame(result)
    assert {"decoder layers", "vision tokens"} <= set(frame.columns) and "n_layers" not in frame.columns
    source = efficiency.paper_speed_source(result)
    assert "H100" in source and "`vtr bench paper`" in source and "/abs/" not in source
