import json
import warnings

import pytest

from vtr.plan import Plan
from vtr.search.traces import MemoScorer, Trace, TraceError, plan_key

CFG = {"search": "gsearch", "n_layers": 3, "n_vision": 4, "tolerance": 0.01, "scorer": "s"}


def test_plan_key_is_canonical():
    assert plan_key(Plan((4, 2, 0), 4)) == "n4:4,2,0"
    assert plan_key(Plan((4, 2, 0), 4, encoder_keep=2)) == "n4e2:4,2,0"
    assert plan_key(Plan((4, 2, 0), 4)) != plan_key(Plan((4, 2, 0), 5))


def test_scored_plans_persist_and_memoise(tmp_path):
    path = tmp_path / "t.jsonl"
    tr = Trace(path, CFG)
    p = Plan((4, 2, 1), 4)
    tr.record(p, 0.5, kind="gsearch", flops_ratio=0.6, seconds=1.5, layer=1)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    rec = json.loads(lines[1])
    assert rec["key"] == "n4:4,2,1" and rec["score"] == 0.5 and rec["kind"] == "gsearch"
    assert rec["plan"]["keep"] == [4, 2, 1] and rec["flops_ratio"] == 0.6 and rec["layer"] == 1
    tr2 = Trace(path, CFG)
    assert tr2.lookup(p) == 0.5 and p in tr2 and tr2.lookup(Plan((4, 2, 0), 4)) is None
    calls = []
    memo = MemoScorer(lambda q: calls.append(q) or 0.9, tr2, "gsearch")
    assert memo(p) == 0.5 and memo(Plan((4, 4, 4), 4)) == 0.9 and memo(Plan((4, 4, 4), 4)) == 0.9
    assert len(calls) == 1 and memo.calls == 1 and memo.evaluations == 2


def test_incompatible_config_raises(tmp_path):
    path = tmp_path / "t.jsonl"
    Trace(path, CFG)
    with pytest.raises(TraceError, match="tolerance"):
        Trace(path, {**CFG, "tolerance": 0.02})
    with pytest.raises(TraceError, match="n_layers"):
        Trace(path).bind({**CFG, "n_layers": 4})
    Trace(path, dict(CFG))  # identical config reopens fine


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "t.jsonl"
    tr = Trace(path, CFG)
    tr.record(Plan((4, 4, 4), 4), 1.0, kind="gsearch")
    with open(path, "a") as f:
        f.write('{"key": "n4:4,2,2", "score": 0.7')  # killed mid-write
    with pytest.warns(RuntimeWarning, match="torn"):
        tr2 = Trace(path, CFG)
    assert len(tr2) == 1
    tr2.record(Plan((4, 2, 2), 4), 0.7, kind="gsearch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr3 = Trace(path, CFG)
    assert tr3.lookup(Plan((4, 2, 2), 4)) == 0.7 and len(tr3) == 2


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "t.jsonl"
    Trace(path, CFG)
    rec = {"key": "n4:4,4,4", "score": 1.0, "kind": "gsearch"}
    with open(path, "a") as f:
        f.write(json.dumps(rec))
    tr = Trace(path, CFG)
    assert tr.lookup(Plan((4, 4, 4), 4)) == 1.0
    tr.record(Plan((4, 0, 0), 4), 0.1, kind="gsearch")
    assert Trace(path, CFG).lookup(Plan((4, 0, 0), 4)) == 0.1


def test_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / "t.jsonl"
    Trace(path, CFG)
    with open(path, "a") as f:
        f.write("garbage\n" + json.dumps({"key": "n4:4,4,4", "score": 1.0}) + "\n")
    with pytest.raises(TraceError, match="line 2"):
        Trace(path)


def test_missing_header_raises(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"key": "n4:4,4,4", "score": 1.0}) + "\n")
    with pytest.raises(TraceError, match="header"):
        Trace(path)


def test_in_memory_trace_and_reserved_metadata():
    tr = Trace(None, CFG)
    tr.record(Plan((4, 4, 4), 4), 1.0, kind="x")
    assert tr.lookup(Plan((4, 4, 4), 4)) == 1.0
    with pytest.raises(ValueError, match="reserved"):
        tr.record(Plan((4, 4, 0), 4), 1.0, kind="x", key="k")
    with pytest.raises(TraceError):
        tr.bind({**CFG, "scorer": "other"})


def test_non_finite_score_is_an_error():
    memo = MemoScorer(lambda p: float("nan"), Trace(None), "x")
    with pytest.raises(ValueError, match="nan"):
        memo(Plan((4,), 4))
