"""The pruning engine: runs any `Policy` inside an unmodified transformers MLLM.

`prune(model, policy)` is a context manager that installs forward hooks and removes them on exit;
the model's code, weights and attention implementation are untouched (SDPA stays on).

What the hooks modify, exactly:
- top-level pre-hook: reads `input_ids` (image positions are found from the image token id(s),
  never from offsets).
- vision-tower hooks (only when the policy has an encoder step): read the feature layer's input
  and output, to offer CLS attention / CLS similarity / keys to the policy. The captured tensors
  sit in a dict also exposed as `model._vtr_vision_capture` while the session is installed, so a
  `FeatureCache` that skips the tower can hand back what the tower gave for the same images.
- language-model pre-hook: at prefill, records padding, positions and image positions; for an
  encoder step, writes the policy's replacement features into `inputs_embeds`. At a decode step
  after a pruned prefill, replaces `attention_mask`/`position_ids` by ones consistent with the
  pruned cache.
- decoder-layer pre-hooks: before layer l, asks the policy which vision tokens survive and gathers
  `hidden_states`, `position_embeddings` (cos, sin) and `position_ids` accordingly, and passes a
  4-D boolean mask (causal, padding-aware, per sample). Each hook keeps a reference to what
  entered its layer (hidden states after the gather, cos/sin), so that the next layer's policy can
  score with this layer's attention (`source="previous"`): computed lazily, only when asked, for
  the query rows only, from this layer's own q/k on that input (what `output_attentions` would
  return for it); the reference is dropped at the end of the prefill. Each layer's KV cache therefore holds only
  the tokens that layer saw; decoding with `generate()` attends to exactly those.
- language-model post-hook: remembers the cache so that decode steps continue the same plan, and
  stores the prefill's state on the cache object (`CACHE_STATE`), so that a later `generate()`
  continuing that cache (`past_key_values=`, multimodal inputs not passed again), in this or
  another `prune` block, decodes with the tokens each layer kept. A cache filled without vtr is
  continued untouched.

Generation: the policy acts at prefill only; decode steps append to each layer's pruned cache and
are never pruned. `generate(use_cache=False)` has no cache, so transformers runs each step as a
new prefill and the policy scores again with the generated tokens present (its tokens may then
differ from `use_cache=True`). Outputs have one row per surviving position; the last row is
always each sample's last token.

Position ids: "original" (default) keeps every surviving token's original position (the RoPE
phases the model would have used without pruning); "renumber" renumbers survivors consecutively
at each pruning step (1-D RoPE only). Until something is pruned, the model's own tensors pass
through untouched, so a keep-all policy is bit-identical to the unpatched model.

The last token of every sample always survives (also when it is an image token: the layer then
keeps one vision token more than the policy chose), so the output's last row is always the
prompt's last position.

Batches: selection is per sample; samples that keep different numbers of tokens are left-padded
inside the layer and masked.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch

from .. import scores as S
from .adapters import Adapter, adapter_for
from .features import CAPTURE_SLOT
from .policy import EncoderView, LayerView, Policy, UnsupportedInput

POSITION_MODES = ("original", "renumber")
# Attribute of a KV cache that holds the state of the pruned prefill that filled it (which tokens
# each layer kept, the next positions), so that continuing the cache later decodes consistently.
CACHE_STATE = "_vtr_prefill_state"


@dataclass
class _Pass:
    """State of one prefill, carried from layer to layer and then through decode steps."""
    vision: torch.Tensor
    valid: torch.Tensor
    vision_index: torch.Tensor
    text_query: torch.Tensor
    pos: torch.Tensor                     # (B, T) or (3, B, T) positions of the current tokens
    pe: tuple | None = None               # current (cos, sin), once changed
    mask: torch.Tensor | None = None      # current 4-D bool mask, once changed
    changed: bool = False
    encoder_keep: torch.Tensor | None = None
    layer_valid: list = field(default_factory=list)  # per layer: (B, T_l) valid keys in its cache
    layer_next: list = field(default_factory=list)   # per layer: (B,) next position (renumber mode)
    next_pos: torch.Tensor | None = None  # (B,) next original position for decoding
    cache: object = None
    scored: dict = field(default_factory=dict)
    previous: tuple | None = None         # (layer module, its input hidden, its (cos, sin)) of the last layer
    decoded: int = 0                      # tokens decoded after the prefill
    vision_counts: list = field(default_factory=list)


class PruningSession:
    def __init__(self, model, policy: Policy, positions: str = "original"):
        if positions not in POSITION_MODES:
            raise ValueError(f"unknown position mode {positions!r}; expected one of {POSITION_MODES}")
        self.model, self.policy, self.positions = model, policy, positions
        self.adapter: Adapter = adapter_for(model)
        if positions == "renumber" and self.adapter.mrope:
            raise UnsupportedInput(f"{self.adapter.family} uses multimodal RoPE: renumbering positions is "
                                   "undefined there; use positions='original'")
        self.lm = self.adapter.language_model(model)
        impl = getattr(self.lm.config, "_attn_implementation", "sdpa") or "sdpa"
        if impl not in ("sdpa", "eager"):
            raise UnsupportedInput(
                f"attention implementation {impl!r}: the engine passes per-sample 4-D masks after pruning, which "
                "sdpa and eager accept; load the model with attn_implementation='sdpa'")
        self._float_mask = impl == "eager"  # eager adds the mask to the logits: needs 0 / -inf, not bool
        self.layers = self.adapter.layers(model)
        if hasattr(policy, "check_model"):
            policy.check_model(len(self.layers))
        self.image_ids = self.adapter.image_token_ids(model)
        self.state: _Pass | None = None
        self._input_ids = None
        self._vision_capture: dict = {}
        self._handles = []
        self.last_stats: dict = {}
        self.select_seconds = 0.0  # time spent in the layer-boundary hooks (scoring + selection + gather)

    # ------------------------------------------------------------------ install / remove
    def install(self):
        add = self._handles.append
        add(self.model.register_forward_pre_hook(self._top_pre, with_kwargs=True))
        add(self.lm.register_forward_pre_hook(self._lm_pre, with_kwargs=True))
        add(self.lm.register_forward_hook(self._lm_post, with_kwargs=True))
        for i, layer in enumerate(self.layers):
            add(layer.register_forward_pre_hook(self._make_layer_pre(i), with_kwargs=True))
        if self.policy.uses_encoder:
            layers = self.adapter.vision_layers(self.model)
            feat = layers[self.adapter.feature_layer_index(self.model)]
            add(feat.self_attn.register_forward_pre_hook(self._vision_attn_pre, with_kwargs=True))
            add(feat.register_forward_hook(self._vision_out))
            # a FeatureCache that serves this batch from its memo refills the capture (see features.py)
            setattr(self.model, CAPTURE_SLOT, self._vision_capture)
        return self

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if getattr(self.model, CAPTURE_SLOT, None) is self._vision_capture:
            delattr(self.model, CAPTURE_SLOT)
        self.state = None

    # ------------------------------------------------------------------ continuing a prefill from a layer
    @torch.no_grad()
    def logits_from_layer(self, start: int, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Last-token logits of this session's last prefill continued from decoder layer `start`
        with only the tokens in `keep` (B, T): what a policy dropping the others right before
        `start` computes, without recomputing layers < start.

        `hidden` is what entered layer `start` in that prefill (`output_hidden_states[start]`), which
        must have been unpruned (a keep-all policy such as `Policy()`), so positions and padding are
        the model's own. Modifies nothing. DyVTE's label collection uses it: one prefill, then one
        cheap suffix per exit layer instead of L - 1 full runs.
        """
        st = self.state
        if st is None or st.next_pos is None:
            raise RuntimeError("logits_from_layer continues a prefill: run the model inside this session first")
        if st.changed or st.encoder_keep is not None:
            raise RuntimeError("logits_from_layer needs an unpruned prefill (run it under a keep-all Policy())")
        if not 0 <= start < len(self.layers):
            raise ValueError(f"start layer {start} outside 0..{len(self.layers) - 1}")
        B, T = st.valid.shape
        if hidden.shape[:2] != (B, T) or keep.shape != (B, T):
            raise ValueError(f"hidden {tuple(hidden.shape[:2])} / keep {tuple(keep.shape)} do not match the prefill's "
                             f"(batch, length) = {(B, T)}")
        keep = keep & st.valid
        ar = torch.arange(T, device=hidden.device)
        last = torch.where(st.valid, ar, -1).amax(1)
        if not bool(keep[torch.arange(B), last].all()):
            raise ValueError("keep must contain each sample's last token (it produces the logits)")
        width = int(keep.sum(1).max())
        # same compaction as a pruning step: left padding, survivors in their original order
        order = torch.sort(torch.where(keep, ar + T, ar), dim=1).indices[:, T - width:]
        valid = torch.gather(keep, 1, order)
        h = torch.gather(hidden, 1, order[..., None].expand(-1, -1, hidden.shape[-1]))
        if st.pos.ndim == 2:
            pos = torch.gather(st.pos, 1, order)
        else:
            pos = torch.gather(st.pos, 2, order[None].expand(st.pos.shape[0], -1, -1))
        pe = self.lm.rotary_emb(h, pos)
        mask = self._format(_causal_mask(valid), h.dtype)
        for layer in self.layers[start:]:
            out = layer(h, attention_mask=mask, position_ids=pos if pos.ndim == 2 else pos[0], position_embeddings=pe)
            h = out[0] if isinstance(out, tuple) else out
        return self.model.get_output_embeddings()(self.lm.norm(h[:, -1]))

    # ------------------------------------------------------------------ hooks
    def _top_pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._input_ids = ids
        return None

    def _vision_attn_pre(self, module, args, kwargs):
        self._vision_capture["attn_in"] = kwargs.get("hidden_states", args[0] if args else None)
        self._vision_capture["attn"] = module

    def _vision_out(self, module, args, output):
        self._vision_capture["out"] = output[0] if isinstance(output, tuple) else output

    def _lm_pre(self, module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            raise UnsupportedInput("the engine expects the decoder to be called with inputs_embeds "
                                   "(as every supported multimodal model does)")
        B, T, _ = embeds.shape
        cache = kwargs.get("past_key_values")
        st = self.state
        if cache is not None and (st is None or cache is not st.cache) and cache.get_seq_length() > 0:
            # continuing a cache filled by an earlier prefill (another `prune` block, another
            # generate() call): the cache carries that prefill's state, so decoding goes on with
            # the tokens each layer kept; a cache filled without vtr holds every token: untouched
            self.state = st = getattr(cache, CACHE_STATE, None)
            if st is None:
                return None
        decoding = st is not None and st.cache is not None and cache is st.cache and cache.get_seq_length() > 0
        if decoding:
            return self._decode_begin(kwargs, B, T)
        ids = self._input_ids
        if ids is None or ids.shape != (B, T):
            raise UnsupportedInput("could not find the input_ids of this prefill (pass input_ids, not inputs_embeds)")
        vision = torch.zeros_like(ids, dtype=torch.bool)
        for i in self.image_ids:
            vision |= ids == i
        am = kwargs.get("attention_mask")
        valid = am.bool() if isinstance(am, torch.Tensor) and am.ndim == 2 else torch.ones_like(vision)
        vision &= valid
        if not bool(vision.any(1).all()):
            b = int((~vision.any(1)).nonzero()[0])
            raise UnsupportedInput(f"sample {b} has no image tokens (token ids {self.image_ids}); "
                                   "vision-token reduction needs an image in every sample")
        vindex = torch.where(vision, vision.long().cumsum(1) - 1, torch.full_like(ids, -1))
        first = torch.where(vision.any(1), vision.float().argmax(1), torch.zeros(B, dtype=torch.long))
        after = torch.arange(T, device=ids.device)[None] > first[:, None]
        text_query = after & ~vision & valid
        pos = self.adapter.base_positions(kwargs.get("position_ids"), B, T, embeds.device)
        self.state = _Pass(vision=vision, valid=valid, vision_index=vindex, text_query=text_query, pos=pos)
        self.policy.start(B)
        if self.policy.uses_encoder:
            kwargs["inputs_embeds"] = self._encoder_step(embeds, vision)
        return args, kwargs

    def _lm_post(self, module, args, kwargs, output):
        st = self.state
        if st is None:
            return None
        if st.next_pos is None:  # end of prefill
            st.previous = None  # frees the last layer's input
            st.cache = getattr(output, "past_key_values", None)
            if st.cache is not None:  # a later generate() or prune block may continue this cache
                setattr(st.cache, CACHE_STATE, st)
            top = st.pos if st.pos.ndim == 2 else st.pos.amax(0)
            st.next_pos = torch.where(st.valid, top, torch.full_like(top, -1)).amax(1) + 1
            self.last_stats = {
                "tokens_per_layer": [int(v.sum()) for v in st.layer_valid],
                # per sample and layer: tokens (text + vision) and vision tokens entering the layer
                "token_counts": torch.stack([v.sum(1) for v in st.layer_valid], 1),
                "vision_counts": torch.stack(st.vision_counts, 1),
            }
        else:
            st.next_pos = st.next_pos + self._decode_len
            st.layer_next = [n + self._decode_len for n in st.layer_next]
            st.decoded += self._decode_len
        return None

    # ------------------------------------------------------------------ prefill: layer boundary
    def _make_layer_pre(self, index: int):
        def hook(module, args, kwargs):
            st = self.state
            if st is None:
                return None
            if st.next_pos is not None:  # decode step
                return self._decode_layer(index, module, args, kwargs)
            t0 = time.perf_counter()
            hidden = args[0] if args else kwargs["hidden_states"]
            # scores are shared within one layer's hook only: the id() in their keys can be reused by
            # another layer's hidden states once the earlier tensor is freed
            st.scored.clear()
            if st.changed:
                kwargs["attention_mask"], kwargs["position_embeddings"] = st.mask, st.pe
                if "position_ids" in kwargs and kwargs["position_ids"] is not None:
                    kwargs["position_ids"] = st.pos if st.pos.ndim == 2 else st.pos[0]
            keep = None
            if index == 0 and st.encoder_keep is not None:
                keep = st.encoder_keep
            here = (module, hidden, kwargs["position_embeddings"])
            source = {"current": here, "previous": st.previous or here}  # layer 0: its own
            view = LayerView(index, hidden, st.vision, st.valid, st.vision_index, st.text_query,
                             lambda q, h, s: self._score(*source[s], q, h),
                             lambda q, s: self._attention(*source[s], q))
            decided = self.policy.keep_before(index, view)
            if decided is not None:
                keep = decided if keep is None else keep & decided
            drops_text = getattr(self.policy, "may_drop_text", False)
            if keep is not None and bool(((st.vision if not drops_text else True) & st.valid & ~keep).any()):
                hidden = self._gather(hidden, kwargs, keep)
                args = (hidden,) + tuple(args[1:]) if args else args
                if not args:
                    kwargs["hidden_states"] = hidden
            st.previous = (module, hidden, st.pe if st.changed else kwargs["position_embeddings"])
            st.layer_valid.append(st.valid)
            st.layer_next.append(st.valid.sum(1))
            st.vision_counts.append((st.vision & st.valid).sum(1))
            self.select_seconds += time.perf_counter() - t0
            return args, kwargs
        return hook

    def _query_rows(self, query, T, device):
        """(rows (B, Q) positions, row_valid (B, Q)) for a query kind or a (B, T) bool mask of rows."""
        st = self.state
        if isinstance(query, torch.Tensor):
            sel = query & st.valid
        elif query == "last":
            last = torch.where(st.valid, torch.arange(T, device=device), -1).amax(1)
            return last[:, None], torch.ones(len(last), 1, dtype=torch.bool, device=device)
        elif query == "text_mean":
            sel = st.text_query
        else:
            raise ValueError(f"unknown query kind {query!r}; expected one of {S.QUERY_KINDS} or a bool mask")
        n = sel.sum(1)
        width = max(1, int(n.max()))
        rows = torch.sort(sel.long(), dim=1, descending=True, stable=True).indices[:, :width]
        return rows, torch.arange(width, device=device)[None] < n[:, None]

    def _attention(self, layer, hidden, pe, query):
        """Attention probabilities (B, H, Q, T) of the query rows, from `layer`'s own q/k projections
        on its input `hidden` with its rotary (cos, sin) `pe`."""
        st = self.state
        key = ("attn", id(hidden), query if isinstance(query, str) else id(query))
        if key in st.scored:
            return st.scored[key]
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)
        B, T, _ = x.shape
        hd = attn.head_dim
        rows, row_valid = self._query_rows(query, T, x.device)
        xq = torch.gather(x, 1, rows[..., None].expand(-1, -1, x.shape[-1]))
        # RoPE in the projections' own (B, T, H, D) layout: contiguous, no transpose copies
        q = attn.q_proj(xq).view(B, rows.shape[1], -1, hd)
        k = attn.k_proj(x).view(B, T, -1, hd)
        cos, sin = pe
        cos, sin = cos.expand(B, -1, -1), sin.expand(B, -1, -1)
        idx = rows[..., None].expand(-1, -1, cos.shape[-1])
        q = _rope(q, torch.gather(cos, 1, idx), torch.gather(sin, 1, idx)).transpose(1, 2)
        k = _rope(k, cos, sin).transpose(1, 2)
        ar = torch.arange(T, device=x.device)
        allowed = (ar[None, None] <= rows[..., None]) & st.valid[:, None]
        out = (S.attention_probs(q, k, allowed, attn.scaling), rows, row_valid)
        st.scored[key] = out
        return out

    def _score(self, layer, hidden, pe, query, heads: str) -> torch.Tensor:
        """(B, T) mean attention of the query rows onto each vision position (0 elsewhere)."""
        probs, rows, row_valid = self._attention(layer, hidden, pe, query)
        return S.reduce_queries(S.reduce_heads(probs, heads), row_valid) * self.state.vision

    def _gather(self, hidden, kwargs, keep):
        """Drop unkept vision tokens: compact each sample to the left-padded survivors."""
        st = self.state
        B, T, _ = hidden.shape
        # never the last token, even when it is an image token (a prompt ending with the image): it
        # produces the output, and `logits[:, -1]` must stay the model's next-token row
        T_ar = torch.arange(T, device=hidden.device)
        last = torch.where(st.valid, T_ar, -1).amax(1, keepdim=True) == T_ar
        if getattr(self.policy, "may_drop_text", False):  # text may go too (CLS-knee stage 2)
            survive = st.valid & (keep | last)
        else:
            survive = st.valid & (keep | ~st.vision | last)
        n = survive.sum(1)
        width = int(n.max())
        # order: padding slots first (left padding), then survivors in original order
        slot_key = torch.where(survive, torch.arange(T, device=hidden.device) + T, torch.arange(T, device=hidden.device))
        order = torch.sort(slot_key, dim=1).indices[:, T - width:]
        new_valid = torch.gather(survive, 1, order)

        def take(x):
            idx = order.view(B, width, *([1] * (x.ndim - 2))).expand(B, width, *x.shape[2:])
            return torch.gather(x, 1, idx)

        hidden = take(hidden)
        cos, sin = st.pe if st.changed else kwargs["position_embeddings"]
        cos, sin = take(cos.expand(B, -1, -1)), take(sin.expand(B, -1, -1))
        if st.pos.ndim == 2:
            pos = torch.gather(st.pos, 1, order)
        else:
            pos = torch.gather(st.pos, 2, order[None].expand(st.pos.shape[0], -1, -1))
        st.vision = torch.gather(st.vision, 1, order) & new_valid
        st.vision_index = torch.gather(st.vision_index, 1, order)
        st.text_query = torch.gather(st.text_query, 1, order) & new_valid
        st.valid = new_valid
        if self.positions == "renumber":
            pos = torch.where(new_valid, new_valid.long().cumsum(1) - 1, torch.zeros_like(pos))
            cos, sin = self.lm.rotary_emb(hidden, self.adapter.rope_position_ids(pos))
        st.pos, st.pe = pos, (cos, sin)
        st.mask = self._format(_causal_mask(new_valid), hidden.dtype)
        st.changed = True
        st.scored.clear()
        kwargs["attention_mask"], kwargs["position_embeddings"] = st.mask, st.pe
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = pos if pos.ndim == 2 else pos[0]
        return hidden

    def _format(self, mask: torch.Tensor, dtype) -> torch.Tensor:
        return _additive(mask, dtype) if self._float_mask else mask

    # ------------------------------------------------------------------ encoder step
    def _encoder_step(self, embeds, vision):
        cap = self._vision_capture
        if "out" not in cap:
            raise UnsupportedInput("the encoder step needs the vision tower to run in this forward (pass pixel_values)")
        out = cap["out"]
        B = embeds.shape[0]
        n_vis = vision.sum(1)
        has_cls = self.adapter.cls_token and getattr(self.model.config, "vision_feature_select_strategy", "default") == "default"
        patches = out[:, 1:] if has_cls else out
        if out.shape[0] != B or bool((n_vis != patches.shape[1]).any()):
            raise UnsupportedInput("encoder-side reduction needs exactly one image per sample whose patch tokens "
                                   "are the image tokens (not LLaVA-NeXT crops or several images)")
        feats = embeds[vision].view(B, -1, embeds.shape[-1])
        attn_mod, attn_in = cap.get("attn"), cap.get("attn_in")
        keys = None
        cls_attention = None
        if attn_mod is not None:
            hd = attn_mod.head_dim
            k = attn_mod.k_proj(attn_in).view(B, attn_in.shape[1], -1, hd).transpose(1, 2)
            keys = k[:, :, 1:] if has_cls else k
            if has_cls:
                q_cls = attn_mod.q_proj(attn_in[:, 0]).view(B, -1, hd)
                cls_attention = lambda: S.cls_attention(q_cls, keys, attn_mod.scale)  # noqa: E731
        side = int(round(patches.shape[1] ** 0.5))
        grid = (side, side) if side * side == patches.shape[1] else None
        view = EncoderView(feats, patches, out[:, 0] if has_cls else None, keys, cls_attention, grid)
        result = self.policy.encoder_step(view)
        cap.clear()  # the same dict object stays installed in the capture slot
        if result is None:
            return embeds
        new_feats, keep = result
        embeds = embeds.clone()
        embeds[vision] = new_feats.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        full_keep = torch.ones_like(vision)
        full_keep[vision] = keep.reshape(-1)
        self.state.encoder_keep = full_keep
        return embeds

    # ------------------------------------------------------------------ decode
    def _decode_begin(self, kwargs, B, t):
        st = self.state
        self._decode_len = t
        if not st.changed:
            return None  # nothing was pruned: the model's own masks and positions are right
        pos = st.next_pos[:, None] + torch.arange(t, device=st.next_pos.device)[None]
        kwargs["position_ids"] = self.adapter.rope_position_ids(pos)
        first = st.layer_valid[0]
        kwargs["attention_mask"] = torch.cat(
            [first, torch.ones(B, st.decoded + t, dtype=first.dtype, device=first.device)], 1).long()
        return (), kwargs

    def _decode_layer(self, index, module, args, kwargs):
        st = self.state
        if not st.changed:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        B, t, _ = hidden.shape
        past = st.layer_valid[index]
        prev = torch.cat([past, torch.ones(B, st.decoded, dtype=torch.bool, device=past.device)], 1)
        causal = torch.ones(t, t, dtype=torch.bool, device=past.device).tril()
        mask = torch.cat([prev[:, None, None, :].expand(B, 1, t, prev.shape[1]),
                          causal[None, None].expand(B, 1, t, t)], -1)
        kwargs["attention_mask"] = self._format(mask, hidden.dtype)
        if self.positions == "renumber":
            pos = st.layer_next[index][:, None] + torch.arange(t, device=past.device)[None]
            kwargs["position_embeddings"] = self.lm.rotary_emb(hidden, self.adapter.rope_position_ids(pos))
        return args, kwargs


def _additive(mask: torch.Tensor, dtype) -> torch.Tensor:
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def _rope(x, cos, sin):
    """Rotary embedding of x (B, T, H, D) with cos/sin (B, T, D) (the rotate-half convention)."""
    cos, sin = cos[:, :, None], sin[:, :, None]
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return torch.addcmul(x * cos, rot, sin)


def _causal_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, T) valid -> (B, 1, T, T) bool: causal, padding keys masked, padding rows see themselves."""
    B, T = valid.shape
    causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()
    m = causal[None] & valid[:, None, :]
    m |= torch.eye(T, dtype=torch.bool, device=valid.device)[None] & ~valid[:, :, None]
    return m[:, None]


@contextlib.contextmanager
def prune(model, policy: Policy, positions: str = "original"):
    """Run `model` under `policy` inside the block; the model is exactly as before afterwards.

    >>> with prune(model, PlanPolicy(plan)):
    ...     out = model.generate(**inputs)
    """
    session = PruningSession(model, policy, positions).install()
    try:
        yield session
    finally:
        session.remove()
