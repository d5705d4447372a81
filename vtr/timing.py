"""Prefill and decode benchmarks: measured speed next to FLOPs, as ratios from one process.

`prefill(model, inputs, plans)` (any policies: `prefill_policies`) times the unpruned prefill and
each plan's prefill in interleaved rounds (so drift of the machine affects all equally) and
reports medians as ratios, with the range of the paired per-round ratios:
  speedup     = unpruned time / pruned time
  flops_ratio = pruned / unpruned prefill FLOPs: vision tower + projector + decoder (from the
                per-sample token counts the engine saw) + LM head (`vtr.flops.prefill_flops`)
  efficiency  = speedup * flops_ratio (1.0 = exactly the speedup FLOPs predict)
  overhead    = time in the engine's selection hooks (scoring, top-k, gather) / unpruned prefill
  kv_bytes_ratio = bytes of the KV cache after prefill, pruned / unpruned (measured on the tensors)

`generate(model, inputs, plans, new_tokens)` measures end-to-end generation the same way: time to
first token, decode tokens per second and total time per output length, peak memory of prefill
and decoding, KV-cache bytes, each pruned vs unpruned with the FLOPs- and bytes-predicted ratios.

On a GPU, kernels run asynchronously: a clock read right after a call measures the launches, not
the work. Every timed region here starts and ends with `synchronize(device)` (a no-op on CPU),
warm-up rounds come first, peak memory is the allocator's (`vtr.memory.PeakMemory`) per phase, and
`device_info` names the device a JSON result was measured on.
"""
from __future__ import annotations

import platform
import statistics
import time

import torch

from .engine import PlanPolicy, Policy, prune
from .flops import DecoderShape, layer_flops, prefill_flops
from .plan import Plan


def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device) -> float:
    """`time.perf_counter()` once the device's queued work has finished: the only clock read that
    times work on an asynchronous device."""
    synchronize(device)
    return time.perf_counter()


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def device_info(device) -> dict:
    """The device a measurement ran on, for a JSON result: its name (the GPU's, or the CPU's)."""
    device = torch.device(device)
    if device.type == "cuda":
        return {"device": str(device), "device_name": torch.cuda.get_device_name(device)}
    return {"device": "cpu", "device_name": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}


_VISION_FLOPS: dict = {}
PIXEL_KEYS = ("pixel_values", "image_sizes", "image_grid_thw")


def _vision_flops(model, inputs: dict) -> int:
    """FLOPs of the vision tower and projector on `inputs`' images, counted once by torch's
    FlopCounterMode (they do not depend on which tokens the decoder keeps)."""
    from torch.utils.flop_counter import FlopCounterMode

    pixels = {k: inputs[k] for k in PIXEL_KEYS if k in inputs}
    key = (id(model), tuple((k, tuple(v.shape)) for k, v in pixels.items()))
    if key not in _VISION_FLOPS:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model.model.get_image_features(**pixels)
        _VISION_FLOPS[key] = counter.get_total_flops()
    return _VISION_FLOPS[key]


def whole_prefill_flops(model, inputs: dict, token_counts, n_images: int) -> int:
    """`vtr.flops.prefill_flops` for LLaVA-1.5-style models (one image, one CLIP grid); for the
    others (AnyRes crops, Qwen2-VL, InternVL tiles) the vision tower and projector are counted on
    the inputs' images, the decoder and LM head analytically from the per-layer token counts."""
    if model.config.model_type == "llava":
        return prefill_flops(model, token_counts, n_images)
    text_cfg = model.config.get_text_config()
    shape = DecoderShape.from_config(text_cfg)
    counts = [int(n) for row in token_counts for n in row]
    head = len(token_counts) * 2 * shape.hidden * text_cfg.vocab_size
    return _vision_flops(model, inputs) + sum(layer_flops(n, shape) for n in counts) + head


def _kv_bytes(cache) -> int:
    total = 0
    for layer in getattr(cache, "layers", []):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


@torch.inference_mode()
def _run(model, inputs, policy, use_cache=False):
    device = model_device(model)
    with prune(model, policy) as session:
        t0 = clock(device)
        out = model(**inputs, use_cache=use_cache, logits_to_keep=1)
        dt = clock(device) - t0
    return dt, session, out


@torch.inference_mode()
def prefill_peak_bytes(model, inputs: dict, policy) -> int:
    """Peak memory of one untimed prefill under `policy` (`vtr.memory.PeakMemory`)."""
    return _untimed(model, inputs, policy, memory=True)[2]


@torch.inference_mode()
def _untimed(model, inputs, policy, memory: bool = False):
    """One untimed prefill with a KV cache under `policy`: (its pruning session, its output, and with
    `memory` its peak bytes, else None). The rows' token counts, KV bytes and peak memory all come
    from this one run."""
    import contextlib

    from .memory import PeakMemory

    peak = PeakMemory(model_device(model)) if memory else contextlib.nullcontext()
    with prune(model, policy) as session, peak:
        out = model(**inputs, use_cache=True, logits_to_keep=1)
    return session, out, peak.peak_bytes if memory else None


def prefill(model, inputs: dict, plans: dict[str, Plan], repeats: int = 7, warmup: int = 2,
            query: str = "last", source: str = "previous", memory: bool = False) -> list[dict]:
    """`prefill_policies` for plans (each a `PlanPolicy` with `query` and `source`), with each
    plan's keep rate after its last cut (`keep`)."""
    policies = {name: PlanPolicy(plan, query=query, source=source) for name, plan in plans.items()}
    rows = prefill_policies(model, inputs, policies, repeats, warmup, memory=memory)
    for row in rows:
        plan = plans[row["name"]]
        row["keep"] = plan.keep[-1] / plan.n_vision
    return rows


def prefill_policies(model, inputs: dict, policies: dict[str, Policy], repeats: int = 7,
                     warmup: int = 2, memory: bool = False) -> list[dict]:
    """Unpruned vs each policy's prefill in interleaved rounds (every round times the unpruned
    model, then every policy, so the machine's drift touches all alike). Per policy: the median
    speedup with its range over rounds (`speedup_range`: min, max of the paired per-round ratios),
    the FLOPs ratio, efficiency, overhead and KV-bytes ratio (see the module docstring). With
    `memory`, also the peak memory of one untimed prefill (`prefill_peak_bytes`, and its ratio to
    the unpruned one's)."""
    for _ in range(warmup):
        _run(model, inputs, Policy())
        for p in policies.values():
            _run(model, inputs, p)
    base_t, times, sel = [], {k: [] for k in policies}, {k: [] for k in policies}
    for _ in range(repeats):
        base_t.append(_run(model, inputs, Policy())[0])
        for name, p in policies.items():
            dt, session, _ = _run(model, inputs, p)
            times[name].append(dt)
            sel[name].append(session.select_seconds)
    base = statistics.median(base_t)
    s_full, out_full, full_peak = _untimed(model, inputs, Policy(), memory)
    full_kv = _kv_bytes(out_full.past_key_values)
    n_img = inputs["input_ids"].shape[0]
    full_flops = whole_prefill_flops(model, inputs, s_full.last_stats["token_counts"].tolist(), n_img)
    rows = []
    for name, p in policies.items():
        s, out, peak = _untimed(model, inputs, p, memory)
        flops = whole_prefill_flops(model, inputs, s.last_stats["token_counts"].tolist(), n_img)
        t = statistics.median(times[name])
        f = flops / full_flops
        paired = [b / m for b, m in zip(base_t, times[name])]
        row = {"name": name, "flops_ratio": round(f, 4), "speedup": round(base / t, 4),
               "speedup_range": [round(min(paired), 4), round(max(paired), 4)],
               "efficiency": round(base / t * f, 4),
               "overhead": round(statistics.median(sel[name]) / base, 4),
               "kv_bytes_ratio": round(_kv_bytes(out.past_key_values) / full_kv, 4),
               "prefill_ms_unpruned": round(base * 1e3, 2), "prefill_ms": round(t * 1e3, 2)}
        if memory:
            row.update(prefill_peak_bytes=peak, prefill_peak_bytes_unpruned=full_peak,
                       prefill_peak_ratio=round(peak / max(1, full_peak), 4))
        rows.append(row)
    return rows


@torch.inference_mode()
def prefill_speedup(model, inputs: dict, policy: Policy, repeats: int = 3) -> float:
    """Unpruned / pruned prefill time on one batch: medians of `repeats` interleaved rounds after a
    warm-up round (a table column; `prefill` and `vtr bench` measure with more rounds)."""
    base, pruned = [], []
    device = model_device(model)
    for i in range(repeats + 1):
        for p, sink in ((Policy(), base), (policy, pruned)):
            with prune(model, p):
                t0 = clock(device)
                model(**inputs, use_cache=False, logits_to_keep=1)
                if i:  # first round is warm-up
                    sink.append(clock(device) - t0)
    return statistics.median(base) / statistics.median(pruned)


def keep_plans(n_layers: int, n_vision: int, keeps: list[float], layer: int = 1) -> dict[str, Plan]:
    """One plan per keep rate: everything before `layer`, round(keep * N) from `layer` on."""
    return {f"keep={k}": Plan.drop_at(n_layers, n_vision, layer, round(k * n_vision)) for k in keeps}


@torch.inference_mode()
def decode(model, inputs: dict, plan: Plan, new_tokens: int = 16, repeats: int = 3, **gen) -> dict:
    """Time to first token (prefill) and per-token decode time, pruned vs unpruned, plus KV bytes."""
    device = model_device(model)

    def once(policy):
        with prune(model, policy):
            t0 = clock(device)
            out = model(**inputs, use_cache=True)
            ttft = clock(device) - t0
            cache = out.past_key_values
            kv = _kv_bytes(cache)
            nxt = out.logits[:, -1:].argmax(-1)
            mask = inputs["attention_mask"]
            t1 = clock(device)
            for _ in range(new_tokens):
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
                out = model(input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1:].argmax(-1)
            per_tok = (clock(device) - t1) / new_tokens
        return ttft, per_tok, kv

    base, pruned = [], []
    for _ in range(repeats):
        base.append(once(Policy()))
        pruned.append(once(PlanPolicy(plan)))

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    return {"ttft_speedup": med(base, 0) / med(pruned, 0), "decode_speedup": med(base, 1) / med(pruned, 1),
            "kv_bytes_ratio": med(pruned, 2) / med(base, 2)}


def _param_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _generate_once(model, inputs: dict, policy, new_tokens: int, measure=None) -> dict:
    """One prefill and `new_tokens` greedy decode steps under `policy` (no early stop, so every
    run decodes the same number of tokens). With `measure` (a `PeakMemory` factory), the peak
    bytes of the prefill and of the decode phase instead of times."""
    import contextlib

    def phase():
        return measure() if measure is not None else contextlib.nullcontext()

    device = model_device(model)
    with prune(model, policy) as session:
        with phase() as m_pre:
            t0 = clock(device)
            out = model(**inputs, use_cache=True, logits_to_keep=1)
            nxt = out.logits[:, -1:].argmax(-1)
            ttft = clock(device) - t0
        counts = session.last_stats["token_counts"].tolist()  # the prefill's, before decoding
        cache = out.past_key_values
        kv = _kv_bytes(cache)
        mask = inputs["attention_mask"]
        with phase() as m_dec:
            t1 = clock(device)
            for _ in range(new_tokens):
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
                out = model(input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True,
                            logits_to_keep=1)
                nxt = out.logits[:, -1:].argmax(-1)
            decode = clock(device) - t1
    if measure is not None:
        return {"prefill_peak_bytes": m_pre.peak_bytes, "decode_peak_bytes": m_dec.peak_bytes, "kv_bytes": kv,
                "token_counts": counts}
    return {"ttft": ttft, "decode": decode, "total": ttft + decode, "kv_bytes": kv}


def _spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


@torch.inference_mode()
def generate(model, inputs: dict, plans: dict[str, Plan], new_tokens: list[int], repeats: int = 5,
             warmup: int = 1, query: str = "last", source: str = "previous") -> list[dict]:
    """`generate_policies` for plans (each a `PlanPolicy` with `query` and `source`), with each
    plan's keep rate after its last cut (`keep`)."""
    policies = {name: PlanPolicy(plan, query=query, source=source) for name, plan in plans.items()}
    rows = generate_policies(model, inputs, policies, new_tokens, repeats, warmup)
    for row in rows:
        if row["name"] in plans:
            plan = plans[row["name"]]
            row["keep"] = plan.keep[-1] / plan.n_vision
    return rows


@torch.inference_mode()
def generate_policies(model, inputs: dict, policies: dict[str, Policy], new_tokens: list[int],
                      repeats: int = 5, warmup: int = 1) -> list[dict]:
    """End-to-end generation, pruned vs unpruned, per policy and output length, in one process.

    For each output length, rounds interleave the unpruned run and every policy's run (so the
    machine's drift affects all alike); each round gives paired ratios (unpruned / pruned time) of
    time to first token, decode time and total time; reported as median and range over rounds,
    beside the absolute medians. Predicted ratios beside them: `prefill_flops_ratio` (whole
    prefill FLOPs, `vtr.flops.prefill_flops`) for the first token, and for decoding, which reads
    the decoder's weights and its KV cache once per token, `decode_bytes_ratio` = (decoder weight
    bytes + pruned KV bytes) / (decoder weight bytes + unpruned KV bytes) at the end of prefill.
    Peak memory of prefill and of decoding (`vtr.memory.PeakMemory`) comes from one extra,
    untimed run per policy at the longest length."""
    from .memory import PeakMemory

    policies = {"unpruned": Policy(), **policies}
    device = model_device(model)
    lm = model.get_decoder() if hasattr(model, "get_decoder") else model
    weights = _param_bytes(lm) + _param_bytes(model.get_output_embeddings())
    n_img = inputs["input_ids"].shape[0]
    # one untimed run per policy gives its peak memory and the prefill's token counts (its FLOPs)
    memory = {name: _generate_once(model, inputs, p, max(new_tokens), measure=lambda: PeakMemory(device))
              for name, p in policies.items()}
    flops = {name: whole_prefill_flops(model, inputs, m["token_counts"], n_img) for name, m in memory.items()}
    rows = []
    for n in new_tokens:
        runs = {name: [] for name in policies}
        for r in range(warmup + repeats):
            for name, p in policies.items():
                res = _generate_once(model, inputs, p, n)
                if r >= warmup:
                    runs[name].append(res)
        base = runs["unpruned"]
        for name in policies:
            mine = runs[name]

            def med(key):
                return statistics.median(x[key] for x in mine)

            row = {"name": name, "new_tokens": n, "batch": n_img,
                   "ttft_ms": round(med("ttft") * 1e3, 2), "total_ms": round(med("total") * 1e3, 2),
                   "decode_tokens_per_s": round(n * n_img / med("decode"), 1),
                   "kv_bytes": mine[0]["kv_bytes"], "prefill_peak_bytes": memory[name]["prefill_peak_bytes"],
                   "decode_peak_bytes": memory[name]["decode_peak_bytes"]}
            if name != "unpruned":
                for key in ("ttft", "decode", "total"):
                    row[f"{key}_speedup"] = _spread([b[key] / m[key] for b, m in zip(base, mine)])
                kv_base = base[0]["kv_bytes"]
                row["prefill_flops_ratio"] = round(flops[name] / flops["unpruned"], 4)
                row["kv_bytes_ratio"] = round(mine[0]["kv_bytes"] / kv_base, 4)
                row["decode_bytes_ratio"] = round((weights + mine[0]["kv_bytes"]) / (weights + kv_base), 4)
                for key in ("prefill_peak_bytes", "decode_peak_bytes"):
                    ratio = memory[name][key] / max(1, memory["unpruned"][key])
                    row[key.replace("_bytes", "_ratio")] = round(ratio, 4)
            rows.append(row)
    return rows
