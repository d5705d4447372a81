"""vtr.timeline: one JSON line per event when $VTR_TIMELINE is set, nothing otherwise; the evaluation
loop and model loading write theirs; .ci/timeline.py sums a file."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from vtr import timeline
from vtr.benchmarks.jsonl import Sample, Split
from vtr.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_written_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(timeline.ENV, raising=False)
    timeline.record("load", model="x", seconds=1.0)
    assert not timeline.enabled() and list(tmp_path.iterdir()) == []


def test_lines_append_in_order(monkeypatch, tmp_path):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(timeline.ENV, str(path))
    timeline.record("load", model="a", seconds=1.5)
    timeline.record("load", model="b", seconds=2.5)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["model"] for x in lines] == ["a", "b"] and lines[0]["event"] == "load"


def test_stopwatch_sums_repeated_stages():
    watch = timeline.Stopwatch()
    for _ in range(3):
        with watch("a"):
            sum(range(10_000))
    assert set(watch.seconds) == {"a"} and 0 < watch.seconds["a"] <= watch.total()


class _Runner:
    """A model-free runner: answers each sample's id; the loop needs only this much."""

    class model:
        class config:
            @staticmethod
            def get_text_config():
                from types import SimpleNamespace
                return SimpleNamespace(hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=2, vocab_size=10)

    name, n_vision = "fake", 4

    def inputs(self, chunk, split, blank=False):
        import torch
        return {"ids": [s.id for s in chunk], "attention_mask": torch.ones(len(chunk), 6)}

    def predict(self, inputs):
        return inputs["ids"]

    def score(self, samples, preds):
        return {"overall": sum(s.id == p for s, p in zip(samples, preds)) / len(samples)}


def test_evaluation_writes_its_line(monkeypatch, tmp_path):
    import torch

    class Stats:  # what prune() reports per batch, without a model to hook
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        last_stats = None

    def fake_prune(model, policy):
        s = Stats()
        s.last_stats = {"token_counts": torch.full((3, 2), 6), "vision_counts": torch.full((3, 2), 4)}
        return s

    monkeypatch.setattr("vtr.evaluation.loop.prune", fake_prune)
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(timeline.ENV, str(path))
    samples = [Sample(id=f"q{i}", image="x.png", question="q", answer="a", family="f") for i in range(5)]
    summary = evaluate(_Runner(), Split(tmp_path, samples), batch_size=3, progress=False)
    assert summary["n"] == 5
    (line,) = [json.loads(x) for x in path.read_text().splitlines()]
    assert line["event"] == "evaluate" and line["evaluated"] == 5 and line["batches"] == 2
    assert set(line["seconds"]) == {"inputs", "model", "total"}


def test_summary_counts_reuse_and_memo_rates():
    spec = importlib.util.spec_from_file_location("timeline_ci", ROOT / ".ci" / "timeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    memo = {"hits": 3, "misses": 1, "layer_hits": 0, "layer_misses": 0, "prefix_hits": 0, "prefix_misses": 0}
    lines = [
        {"event": "load", "pid": 1, "time": 0, "model": "m", "seconds": 2.0},
        {"event": "evaluate", "pid": 1, "time": 1, "evaluated": 10, "batch_size": 4, "batches": 3,
         "memo": memo, "seconds": {"inputs": 1.0, "model": 5.0, "total": 7.0}},
        {"event": "evaluate", "pid": 1, "time": 2, "evaluated": 0, "batch_size": 4, "batches": 0,
         "memo": memo, "seconds": {"total": 0.1}},
        {"event": "measure", "pid": 2, "time": 3, "name": "timings", "reused": True},
    ]
    first, second = mod.summarise(lines)
    assert (first["evaluations"], first["reused"], first["samples"], first["loads"]) == (2, 1, 10, 1)
    assert first["loop_s"] == 1.0 + 0.1 and dict(first["batches"]) == {4: 3}
    assert mod.rate(first["memo"], "") == "0.75 of 8"
    assert second["timings_reused"] == 1
