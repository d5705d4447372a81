"""`vtr.timing` on an asynchronous device: every clock read waits for the device's queued work.

No GPU here: the model runs on CPU while `vtr.timing` is told its device is `cuda:0`, and
`torch.cuda.synchronize` is replaced by a recorder. Each event (a synchronisation, a clock read, a
decoder forward) is logged in order, so the test sees whether the work of a timed region lies
between two synchronised clock reads.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

from vtr import timing, tiny
from vtr.memory import PeakMemory
from vtr.plan import Plan


@pytest.fixture
def fake_cuda(monkeypatch):
    events: list[str] = []
    now = [0.0]

    def perf_counter():
        events.append("clock")
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    monkeypatch.setattr(timing, "model_device", lambda model: torch.device("cuda:0"))
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=perf_counter))  # timing's clock only
    # peak memory would read CUDA's allocator: measured on CPU instead (what it measures is not tested here)
    monkeypatch.setattr(timing, "PeakMemory", lambda device: PeakMemory("cpu"), raising=False)
    return events


def _model():
    model = tiny.build("llava", layers=2)
    return model, tiny.make_inputs(model, "llava", batch=2)


def _log_forwards(model, events):
    return model.model.language_model.register_forward_hook(lambda *a: events.append("forward"))


def _check_bracketed(events):
    """Every clock read follows a synchronisation, and every forward lies between two clock reads."""
    assert events.count("clock") >= 2
    for i, e in enumerate(events):
        if e == "clock":
            assert i > 0 and events[i - 1] == "sync", events[max(0, i - 3):i + 1]
    first, last = events.index("clock"), len(events) - 1 - events[::-1].index("clock")
    assert all(first < i < last for i, e in enumerate(events) if e == "forward")


def test_prefill_timing_synchronises_around_every_timed_region(fake_cuda):
    model, inputs = _model()
    handle = _log_forwards(model, fake_cuda)
    try:
        dt, _, _ = timing._run(model, inputs, timing.Policy())
    finally:
        handle.remove()
    assert fake_cuda == ["sync", "clock", "forward", "sync", "clock"]
    assert dt == 1.0  # one tick of the fake clock: the two reads around the forward


def test_prefill_speedup_and_generation_synchronise(fake_cuda):
    model, inputs = _model()
    n = tiny.n_image_tokens(model, "llava")
    plan = Plan.drop_at(2, n, 1, n // 2)
    handle = _log_forwards(model, fake_cuda)
    try:
        timing.prefill_speedup(model, inputs, timing.PlanPolicy(plan), repeats=1)
        _check_bracketed(fake_cuda)
        fake_cuda.clear()
        timing._generate_once(model, inputs, timing.PlanPolicy(plan), new_tokens=2)
        _check_bracketed(fake_cuda)
        assert fake_cuda.count("forward") == 3  # prefill and two decode steps, inside the timed regions
    finally:
        handle.remove()


def test_device_info_names_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU 80GB")
    assert timing.device_info("cuda:0") == {"device": "cuda:0", "device_name": "Fake GPU 80GB"}
    cpu = timing.device_info("cpu")
    assert cpu["device"] == "cpu" and cpu["threads"] == torch.get_num_threads()


def test_cpu_timing_reads_the_clock_without_synchronising(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    t0 = time.perf_counter()
    assert timing.clock("cpu") >= t0 and not calls


def test_prefill_reports_peak_memory_per_policy():
    model, inputs = _model()
    n = tiny.n_image_tokens(model, "llava")
    rows = timing.prefill(model, inputs, timing.keep_plans(2, n, [0.25]), repeats=1, warmup=0, memory=True)
    (row,) = rows
    assert 0 < row["prefill_peak_bytes"] < row["prefill_peak_bytes_unpruned"]
    expected = row["prefill_peak_bytes"] / row["prefill_peak_bytes_unpruned"]
    assert row["prefill_peak_ratio"] == pytest.approx(expected, abs=1e-4)


def test_one_untimed_run_gives_the_same_memory_and_flops_as_separate_runs():
    """A row's peak memory, token counts and KV bytes come from one untimed prefill per policy: the
    same values as a prefill measured on its own, and generation's FLOPs ratio is prefill's."""
    from vtr.engine import PlanPolicy, Policy

    model, inputs = _model()
    n = tiny.n_image_tokens(model, "llava")
    plans = timing.keep_plans(2, n, [0.25])
    (row,) = timing.prefill(model, inputs, plans, repeats=1, warmup=0, memory=True)
    policy = PlanPolicy(plans["keep=0.25"], query="last", source="previous")
    assert row["prefill_peak_bytes"] == timing.prefill_peak_bytes(model, inputs, policy)
    assert row["prefill_peak_bytes_unpruned"] == timing.prefill_peak_bytes(model, inputs, Policy())
    gen = {r["name"]: r for r in timing.generate(model, inputs, plans, [2], repeats=1, warmup=0)}
    assert gen["keep=0.25"]["prefill_flops_ratio"] == row["flops_ratio"] < 1
    assert gen["keep=0.25"]["kv_bytes_ratio"] == row["kv_bytes_ratio"] < 1
