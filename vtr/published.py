"""FastV as published implementations run it, timed beside vtr's engine in the same interleaved rounds.

Users report that published token-reduction code does not run faster in practice (FastV#50,
VisionZip#29, SparseVLM#25). Two implementation strategies are reproduced here, on the unmodified
transformers model, each keeping exactly the tokens vtr's FastV keeps:

- `fastv_eager`, FastV as its code runs: the decoder in eager attention (its code predates SDPA),
  the attention weights of layer K-1 taken from that layer's forward (`output_attentions`), then
  before layer K each sample's top-k vision tokens by the last token's head-mean attention are
  kept; hidden states, rotary (cos, sin), position ids and a new causal mask are cut to them.
- `rerun_hook`, the hook-based strategy of toolkits such as llmc: the decoder stays in SDPA (which
  returns no weights), and a hook on layer K-1 re-runs that layer's attention in eager mode on the
  layer's input to get the weights, then the same cut.

vtr's engine (`vtr`) scores only the last token's row from layer K-1's q/k, in SDPA. Every strategy
is compared with the unpruned SDPA model (no hooks): speedup, efficiency (speedup x the FLOPs
ratio of the kept tokens, the same for all three) and peak memory of one untimed prefill, plus
whether all three kept the same vision tokens in every sample (`same_tokens`).
"""
from __future__ import annotations

import contextlib
import statistics

import torch

from .engine import PlanPolicy, Policy, adapter_for, prune
from .memory import PeakMemory
from .plan import Plan
from .timing import clock, model_device, whole_prefill_flops

STRATEGIES = ("vtr", "fastv_eager", "rerun_hook")


def _mask(valid: torch.Tensor, eager: bool, dtype) -> torch.Tensor:
    """(B, T) valid -> (B, 1, T, T) causal mask over valid keys (padding rows see themselves):
    boolean for SDPA, additive for eager attention."""
    T = valid.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()
    m = causal[None] & valid[:, None, :]
    m |= torch.eye(T, dtype=torch.bool, device=valid.device)[None] & ~valid[:, :, None]
    m = m[:, None]
    if not eager:
        return m
    return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, torch.finfo(dtype).min)


def _take(x: torch.Tensor, order: torch.Tensor, dim: int) -> torch.Tensor:
    """Gather the positions `order` (B, t) along `dim` of x, whose batch dimension is dim - 1."""
    dim = dim % x.ndim
    shape = list(x.shape)
    shape[dim - 1] = order.shape[0]
    x = x.expand(*shape)
    view = [1] * x.ndim
    view[dim - 1], view[dim] = order.shape
    idx = order.view(view).expand(*shape[:dim], order.shape[1], *shape[dim + 1:])
    return torch.gather(x, dim, idx)


@contextlib.contextmanager
def _text_attention(model, impl: str):
    """The decoder's attention implementation set to `impl` inside the block."""
    cfg = adapter_for(model).language_model(model).config
    before = cfg._attn_implementation
    cfg._attn_implementation = impl
    try:
        yield
    finally:
        cfg._attn_implementation = before


class FastVCut:
    """Hooks that cut each sample to its top-`keep` vision tokens before decoder layer `layer`,
    ranked by layer `layer - 1`'s attention from the last token (mean over heads), as FastV's code
    does. `rerun`: get that attention by re-running the layer's attention eagerly in a hook (the
    decoder stays in SDPA); else read it from the layer's own eager forward. `kept` holds, after a
    prefill, each sample's kept vision indices (sorted)."""

    def __init__(self, model, layer: int, keep: int, rerun: bool):
        if layer < 1:
            raise ValueError("FastV cuts after a layer: layer >= 1")
        self.model, self.layer, self.keep, self.rerun = model, layer, keep, rerun
        adapter = adapter_for(model)
        self.layers = adapter.layers(model)
        self.image_ids = adapter.image_token_ids(model)
        self.kept: list[list[int]] = []
        self._handles = []

    def __enter__(self):
        add = self._handles.append
        add(self.model.register_forward_pre_hook(self._top_pre, with_kwargs=True))
        before = self.layers[self.layer - 1]
        if self.rerun:
            add(before.register_forward_pre_hook(self._capture_input, with_kwargs=True))
            add(before.register_forward_hook(self._rerun_attention))
        else:
            add(before.self_attn.register_forward_hook(self._store_weights))
        add(self.layers[self.layer].register_forward_pre_hook(self._cut, with_kwargs=True))
        for later in self.layers[self.layer + 1:]:
            add(later.register_forward_pre_hook(self._follow, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._state = None
        return False

    # ------------------------------------------------------------------ hooks
    def _top_pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        valid = mask.bool() if mask is not None else torch.ones_like(ids, dtype=torch.bool)
        vision = torch.zeros_like(valid)
        for i in self.image_ids:
            vision |= ids == i
        self._state = {"valid": valid, "vision": vision & valid}

    def _store_weights(self, module, args, output):
        weights = output[1]
        if weights is None:
            raise RuntimeError("layer K-1 returned no attention weights: FastV's strategy needs eager "
                               "attention")
        self._state["weights"] = weights[:, :, -1]  # the last token's row (left padding: position T-1)

    def _capture_input(self, module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        self._state["input"] = (hidden, kwargs["position_embeddings"])

    def _rerun_attention(self, module, args, output):
        hidden, pe = self._state.pop("input")
        attn = module.self_attn
        mask = _mask(self._state["valid"], True, hidden.dtype)
        with _text_attention(self.model, "eager"):
            _, weights = attn(hidden_states=module.input_layernorm(hidden), position_embeddings=pe,
                              attention_mask=mask)
        self._state["weights"] = weights[:, :, -1]

    def _cut(self, module, args, kwargs):
        st = self._state
        hidden = args[0] if args else kwargs["hidden_states"]
        B, T, _ = hidden.shape
        score = st.pop("weights").float().mean(1)  # (B, T): head-mean attention of the last token
        vision, valid = st["vision"], st["valid"]
        score = score.masked_fill(~vision, float("-inf"))
        top = score.topk(self.keep, dim=1).indices
        keep = ~vision & valid
        keep = keep | torch.zeros_like(keep).scatter(1, top, True)
        first = vision.float().argmax(1, keepdim=True)
        self.kept = [sorted((t - f).tolist()) for t, f in zip(top, first)]
        keep |= ~valid  # padding stays in place: every sample keeps the same number of positions
        width = int(keep.sum(1).max())
        ar = torch.arange(T, device=hidden.device)
        order = torch.sort(torch.where(keep, ar + T, ar), dim=1).indices[:, T - width:]
        new_valid = torch.gather(valid, 1, order)
        cos, sin = kwargs["position_embeddings"]
        st["pe"] = (_take(cos, order, -2), _take(sin, order, -2))
        pos = kwargs.get("position_ids")
        st["pos"] = _take(pos, order, -1) if pos is not None else None
        dtype = hidden.dtype
        eager = self.layers[self.layer].self_attn.config._attn_implementation == "eager"
        st["mask"] = _mask(new_valid, eager, dtype)
        hidden = _take(hidden, order, 1)
        if args:
            args = (hidden,) + tuple(args[1:])
        else:
            kwargs["hidden_states"] = hidden
        return self._follow(module, args, kwargs)

    def _follow(self, module, args, kwargs):
        st = self._state
        kwargs["attention_mask"], kwargs["position_embeddings"] = st["mask"], st["pe"]
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = st["pos"]
        return args, kwargs


class _RecordingFastV(PlanPolicy):
    """vtr's FastV (a plan scored by the previous layer's last-token attention) that remembers
    which vision tokens each sample kept at its one cut."""

    def start(self, batch_size: int) -> None:
        super().start(batch_size)
        self.kept = []

    def select(self, layer, view, k):
        keep = super().select(layer, view, k)
        chosen = keep & view.vision & view.valid
        self.kept = [sorted(view.vision_index[b][chosen[b]].tolist()) for b in range(chosen.shape[0])]
        return keep


def strategies(model, n_vision: int, keep_rate: float, layer: int = 2) -> dict:
    """name -> (context factory, whose `.kept` lists each sample's kept vision indices after a run)."""
    n_layers = len(adapter_for(model).layers(model))
    k = round(keep_rate * n_vision)
    policy = _RecordingFastV(Plan.drop_at(n_layers, n_vision, layer, k), query="last", source="previous")

    @contextlib.contextmanager
    def vtr_run():
        with prune(model, policy):
            yield policy

    @contextlib.contextmanager
    def eager_run():
        with _text_attention(model, "eager"), FastVCut(model, layer, k, rerun=False) as cut:
            yield cut

    @contextlib.contextmanager
    def rerun():
        with FastVCut(model, layer, k, rerun=True) as cut:
            yield cut

    return {"vtr": vtr_run, "fastv_eager": eager_run, "rerun_hook": rerun}


@torch.inference_mode()
def compare(model, inputs: dict, n_vision: int, keeps: list[float], layer: int = 2, repeats: int = 7,
            warmup: int = 2) -> dict:
    """vtr's FastV, FastV's eager strategy and the re-run hook strategy at each keep rate (FastV's
    K = `layer`), against the unpruned SDPA model, in interleaved rounds. -> {"rows": one row per
    (keep, strategy), "same_tokens": all strategies kept the same vision tokens in every sample at
    every keep rate}."""
    device = model_device(model)
    n_img = inputs["input_ids"].shape[0]
    setups = {keep: strategies(model, n_vision, keep, layer) for keep in keeps}

    def timed(ctx):
        with ctx():
            t0 = clock(device)
            model(**inputs, use_cache=False, logits_to_keep=1)
            return clock(device) - t0

    runs = [(keep, name, ctx) for keep, s in setups.items() for name, ctx in s.items()]
    for _ in range(warmup):
        timed(contextlib.nullcontext)
        for _, _, ctx in runs:
            timed(ctx)
    base, times = [], {(keep, name): [] for keep, name, _ in runs}
    for _ in range(repeats):
        base.append(timed(contextlib.nullcontext))
        for keep, name, ctx in runs:
            times[keep, name].append(timed(ctx))
    with PeakMemory(device) as m:
        model(**inputs, use_cache=False, logits_to_keep=1)
    base_peak = m.peak_bytes
    with prune(model, Policy()) as s:
        model(**inputs, use_cache=False, logits_to_keep=1)
    full_flops = whole_prefill_flops(model, inputs, s.last_stats["token_counts"].tolist(), n_img)
    rows, same = [], True
    b = statistics.median(base)
    for keep, s in setups.items():
        kept = {}
        for name, ctx in s.items():
            with PeakMemory(device) as m, ctx() as run:
                model(**inputs, use_cache=False, logits_to_keep=1)
            kept[name] = run.kept
            if name == "vtr":
                with prune(model, run) as sess:  # the FLOPs of the kept tokens (`run` is vtr's policy)
                    model(**inputs, use_cache=False, logits_to_keep=1)
                counts = sess.last_stats["token_counts"].tolist()
                flops = whole_prefill_flops(model, inputs, counts, n_img) / full_flops
            t = statistics.median(times[keep, name])
            paired = [x / y for x, y in zip(base, times[keep, name])]
            rows.append({"keep": keep, "strategy": name, "speedup": round(b / t, 4),
                         "speedup_range": [round(min(paired), 4), round(max(paired), 4)],
                         "flops_ratio": round(flops, 4), "efficiency": round(b / t * flops, 4),
                         "prefill_peak_bytes": m.peak_bytes, "prefill_peak_bytes_unpruned": base_peak,
                         "prefill_peak_ratio": round(m.peak_bytes / max(1, base_peak), 4),
                         "prefill_ms": round(t * 1e3, 2), "prefill_ms_unpruned": round(b * 1e3, 2)})
        agree = all(kept[name] == kept["vtr"] for name in kept)
        for row in rows[-len(s):]:
            row["same_tokens"] = agree
        same &= agree
    return {"rows": rows, "same_tokens": same, "layer": layer, "n_vision": n_vision, "batch": n_img}
