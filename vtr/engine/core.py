"""`prune(model, policy)`: installs the engine's hooks on an unmodified transformers MLLM and
removes them on exit; the model's code, weights and attention implementation are untouched (SDPA
stays on). `PruningSession` holds the hooks and routes each call to the part that does the work:

- top-level pre-hook: reads `input_ids`, or without them `inputs_embeds`, and `logits_to_keep`;
  takes `labels` out of the call (`vtr.engine.loss`). Top-level post-hook, only when `labels`
  were passed: the output with the loss over the surviving positions.
- vision-tower hooks, only when the policy has an encoder step (`vtr.engine.encoder`).
- model attribute `_vtr_selection` (while installed): a function returning which input columns
  the rows entering the current layer hold, so that a `FeatureCache` can key a pruned prefix
  (`vtr.engine.memo`); it reads state, changes nothing.
- language-model pre-hook: at prefill, records padding, positions and image positions
  (`vtr.engine.inputs`) and, for an encoder step, writes the policy's features into
  `inputs_embeds`; at a decode step after a pruned prefill, the decoder's positions and mask
  (`vtr.engine.decode`).
- decoder-layer pre-hooks: at prefill, selection and gather (`vtr.engine.prefill`); at a decode
  step, the layer's mask for its pruned cache (`vtr.engine.decode`).
- language-model post-hook: ends the prefill and attaches its state to the cache it filled, so
  that decode steps (here or in a later `prune` block) continue the same plan.

Hooks are wrapped for torch.compile (`vtr.engine.compiled`)."""
from __future__ import annotations

import contextlib

import torch

from . import continuation, decode, prefill
from .adapters import Adapter, adapter_for
from .compiled import eager, reset_if_compiled
from .encoder import VisionCapture, encoder_step
from .inputs import image_positions, marks_from_vision, padding
from .loss import SurvivorLoss
from .masks import fit_mask
from .memo import CAPTURE_SLOT, SELECTION_SLOT
from .policy import Policy, UnsupportedInput

POSITION_MODES = ("original", "renumber")


class PruningSession:
    """The hooks of one `prune` block, and the state of its last prefill (`state`) and of the KV cache
    being decoded (`decoding`)."""

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
                f"attention implementation {impl!r}: the engine passes per-sample 4-D masks after pruning, "
                "which sdpa and eager accept; load the model with attn_implementation='sdpa'")
        self.float_mask = impl == "eager"  # eager adds the mask to the logits: needs 0 / -inf, not bool
        self.layers = self.adapter.layers(model)
        policy.check_model(len(self.layers))
        self.image_ids = self.adapter.image_token_ids(model)
        self.state: prefill.Prefill | None = None
        self.decoding: decode.PrunedCache | None = None
        self._input_ids = None
        self._input_embeds = None
        self._pixel_values = None
        self._follow = 0
        self._loss = SurvivorLoss(model)
        self._idle = False  # decode steps after a prefill that removed nothing: every hook a no-op
        self._vision_capture = VisionCapture()
        self._handles = []
        self.last_stats: dict = {}
        self.select_seconds = 0.0  # time spent in the layer-boundary hooks (scoring + selection + gather)

    # ------------------------------------------------------------------ install / remove
    def install(self):
        reset_if_compiled(self.model)
        add = self._handles.append

        def idle(*hook_args):
            return self._idle

        def never(*hook_args):
            return False

        # the top-level hooks are plain Python (and the loss): traced as they are under compile
        add(self.model.register_forward_pre_hook(self._top_pre, with_kwargs=True))
        add(self.model.register_forward_hook(self._top_post, with_kwargs=True))
        add(self.lm.register_forward_pre_hook(eager(self._lm_pre, self._idle_step), with_kwargs=True))
        add(self.lm.register_forward_hook(eager(self._lm_post, idle), with_kwargs=True))
        for i, layer in enumerate(self.layers):
            add(layer.register_forward_pre_hook(eager(self._make_layer_pre(i), idle), with_kwargs=True))
        if self.policy.uses_encoder:
            layers = self.adapter.vision_layers(self.model)
            feat = layers[self.adapter.feature_layer_index(self.model)]
            cap = self._vision_capture
            add(feat.self_attn.register_forward_pre_hook(eager(cap.attention_pre_hook, never),
                                                         with_kwargs=True))
            add(feat.register_forward_hook(eager(cap.output_hook, never)))
            tower = getattr(getattr(self.model, "model", None), "vision_tower", None)
            if tower is not None:  # the images themselves, for a policy that re-encodes them resized
                add(tower.register_forward_pre_hook(eager(cap.tower_pre_hook, never), with_kwargs=True))
            # a FeatureCache that serves this batch from its memo refills the capture (see memo.py)
            setattr(self.model, CAPTURE_SLOT, cap)
        setattr(self.model, SELECTION_SLOT, self._selection)  # for a FeatureCache's pruned-prefix memo
        return self

    def _selection(self):
        """(positions mode, layer index, id of the hidden states that layer's hook received, the
        columns of the input its rows now hold, their validity) of the running prefill, or None.
        What enters a layer is a function of these and of what the previous layer gave, which is
        how a FeatureCache keys a pruned prefix (`vtr.engine.memo`)."""
        st = self.state
        if st is None or st.done or st.entered is None:
            return None
        return (self.positions, *st.entered, st.origin, st.valid)

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if getattr(self.model, CAPTURE_SLOT, None) is self._vision_capture:
            delattr(self.model, CAPTURE_SLOT)
        if getattr(self.model, SELECTION_SLOT, None) == self._selection:
            delattr(self.model, SELECTION_SLOT)
        self.state = self.decoding = None
        self._idle = False
        reset_if_compiled(self.model)  # also code traced inside the block: it calls the hooks

    def _idle_step(self, module, args, kwargs) -> bool:
        """A one-token step on the cache of a prefill that removed nothing (what _lm_pre would
        leave untouched), decided without reading a tensor."""
        d = self.decoding
        return (self._idle and d is not None and kwargs.get("past_key_values") is d.cache
                and kwargs["inputs_embeds"].shape[1] == 1)

    def logits_from_layer(self, start: int, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Last-token logits of the last prefill continued from layer `start` with only the tokens in
        `keep` (`vtr.engine.continuation`)."""
        return continuation.logits_from_layer(self, start, hidden, keep)

    # ------------------------------------------------------------------ shared by the parts
    def fit(self, mask, kwargs, index: int, dtype) -> torch.Tensor:
        """The prefill's current mask as layer `index` takes it (`vtr.engine.masks.fit_mask`)."""
        return fit_mask(mask, kwargs.get("past_key_values"), index, dtype, self.float_mask, self.state.fitted)

    def rotary(self, hidden, pos):
        """(cos, sin) of the model's rotary embedding at positions `pos`."""
        return self.lm.rotary_emb(hidden, self.adapter.rope_position_ids(pos))

    # ------------------------------------------------------------------ hooks
    def _top_pre(self, module, args, kwargs):
        self._input_ids = kwargs.get("input_ids", args[0] if args else None)
        # without input_ids the image positions are read from these (in _lm_pre, only at a prefill)
        self._input_embeds = kwargs.get("inputs_embeds") if self._input_ids is None else None
        # an encoder step may re-encode these images resized (`EncoderView.resized_features`)
        self._pixel_values = kwargs.get("pixel_values")
        keep = kwargs.get("logits_to_keep")
        # assisted decoding verifies k - 1 candidate tokens appended to the prompt with k logit rows
        self._follow = keep - 1 if isinstance(keep, int) and keep > 1 else 0
        return (args, kwargs) if self._loss.take_labels(kwargs) else None

    def _top_post(self, module, args, kwargs, output):
        return self._loss.output_with_loss(output, self.state)

    def _lm_pre(self, module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            raise UnsupportedInput("the engine expects the decoder to be called with inputs_embeds "
                                   "(as every supported multimodal model does)")
        B, T, _ = embeds.shape
        cache = kwargs.get("past_key_values")
        self._idle = False
        if cache is not None and decode.cached_length(cache) > 0:
            if self.decoding is None or cache is not self.decoding.cache:
                # continuing a cache filled by an earlier prefill (another `prune` block, another
                # generate() call): its state says which tokens each layer kept; a cache filled
                # without vtr holds every token: untouched
                self.state, self.decoding = None, decode.pruned_state(cache)
                if self.decoding is None:
                    return None
            self._idle = not self.decoding.changed
            return self.decoding.begin(kwargs, B, T, self.adapter)
        self.decoding = None
        if cache is not None:  # an emptied cache starts afresh (an earlier prefill's marks go)
            decode.forget(cache)
        valid, refusal = padding(kwargs.get("attention_mask"), B, T, embeds.device)
        vision = image_positions(self.model, self.image_ids, self._input_ids, self._input_embeds, B, T)
        self._input_embeds = None  # held from the top-level call to here only
        if vision is None:  # no token ids or embeddings of this shape reached the model: nothing to prune
            vision = torch.zeros(B, T, dtype=torch.bool, device=embeds.device)
        marks = marks_from_vision(vision.to(embeds.device), valid, self._follow if cache is not None else 0)
        try:
            pos = self.adapter.base_positions(kwargs.get("position_ids"), B, T, embeds.device)
        except RuntimeError:  # position ids of another shape: the model's own business unless pruned
            pos = self.adapter.base_positions(None, B, T, embeds.device)
            shape = tuple(kwargs["position_ids"].shape)
            refusal = refusal or f"position_ids of shape {shape}: expected (batch, length)"
        self.state = prefill.Prefill(pos=pos, length=T, refusal=refusal, **marks)
        self.policy.start(B)
        if self.policy.uses_encoder:
            kwargs["inputs_embeds"], self.state.encoder_mask = encoder_step(
                self.model, self.adapter, self.policy, self._vision_capture, embeds, marks["vision"], refusal,
                self._pixel_values)
        self._pixel_values = None  # held from the top-level call to here only
        return args, kwargs

    def _lm_post(self, module, args, kwargs, output):
        st = self.state
        if st is None or st.done:  # decode steps: the cache itself says how far it got
            return None
        st.done = True
        st.previous = None  # frees the last layer's input
        cache = getattr(output, "past_key_values", None)
        # a later generate() or prune block may continue this cache
        self.decoding = decode.PrunedCache.attach(st, cache) if cache is not None else None
        self._idle = not st.changed and cache is not None
        self.last_stats = {
            "tokens_per_layer": [int(v.sum()) for v in st.layer_valid],
            # per sample and layer: tokens (text + vision) and vision tokens entering the layer
            "token_counts": torch.stack([v.sum(1) for v in st.layer_valid], 1),
            "vision_counts": torch.stack(st.vision_counts, 1),
        }
        return None

    def _make_layer_pre(self, index: int):
        def hook(module, args, kwargs):
            if self.decoding is not None:  # a decode step
                rotary = self.rotary if self.positions == "renumber" else None
                return self.decoding.layer_inputs(index, args, kwargs, self.float_mask, rotary)
            st = self.state
            if st is None or st.done:
                return None
            return prefill.before_layer(self, index, module, args, kwargs)
        return hook


@contextlib.contextmanager
def prune(model, policy: Policy, positions: str = "original"):
    """Run `model` under `policy` inside the block; the model is exactly as before afterwards.

    >>> with prune(model, PlanPolicy(plan)):
    ...     out = model.generate(**inputs)
    """
    session = PruningSession(model, policy, positions)
    session.install()
    try:
        yield session
    finally:
        session.remove()
