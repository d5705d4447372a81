"""The pruning engine: runs any `Policy` inside an unmodified transformers MLLM.

`prune(model, policy)` is a context manager that installs forward hooks and removes them on exit;
the model's code, weights and attention implementation are untouched (SDPA stays on).

What the hooks modify, exactly:
- top-level pre-hook: reads `input_ids` (image positions are found from the image token id(s),
  never from offsets), or without them `inputs_embeds` (image positions are where the embedding
  equals an image token's, the rule transformers itself uses), and `logits_to_keep`; removes
  `labels` from the call (the post-hook computes the loss).
- top-level post-hook, only when `labels` were passed: returns the output with the loss the
  model's own `loss_function` gives, with the keyword arguments the model passes it
  (`shift_labels`, `num_items_in_batch`, ...). Nothing pruned: on the model's logits and labels,
  as the model would. Pruned: over the surviving positions, each predicting the input's next
  token (the label one input column after it, or the `shift_labels` entry of its own column); a
  label whose predicting position was pruned drops out (in LLaVA training those are image
  positions, labelled -100 anyway). `labels` with `logits_to_keep` are refused before the forward
  runs (the model's own loss cannot pair them either).
- vision-tower hooks (only when the policy has an encoder step): read the feature layer's input
  and output, to offer CLS attention / CLS similarity / keys to the policy. The captured tensors
  sit in a dict also exposed as `model._vtr_vision_capture` while the session is installed, so a
  `FeatureCache` that skips the tower can hand back what the tower gave for the same images.
- model attribute `_vtr_selection` (while installed): a function returning which input columns
  the rows entering the current layer hold, so that a `FeatureCache` can key a pruned prefix; it
  reads state, changes nothing.
- language-model pre-hook: at prefill, records padding (from the 2-D mask, or from the 4-D mask /
  dict of them that generate() passes with a static cache), positions and image positions, and
  why pruning this input would be wrong, if it would (`_padding`: right padding, a 4-D mask that
  is not causal with padding); for an encoder step, writes the policy's replacement features into
  `inputs_embeds`. At a decode step
  after a pruned prefill, replaces `position_ids` (and a 2-D `attention_mask`) by ones consistent
  with the pruned cache; how many tokens were decoded is read from the cache, so a `cache.crop()`
  (assisted decoding dropping rejected candidates from every layer's end) is followed.
- decoder-layer pre-hooks: before layer l, asks the policy which vision tokens survive and gathers
  `hidden_states`, `position_embeddings` (cos, sin) and `position_ids` accordingly, and passes a
  4-D mask (causal, padding-aware, per sample; boolean for SDPA, additive for eager), widened
  with masked columns to the keys the layer's cache returns (a static cache: all max_cache_len
  slots). Each hook keeps a reference to what
  entered its layer (hidden states after the gather, cos/sin), so that the next layer's policy can
  score with this layer's attention (`source="previous"`): computed lazily, only when asked, for
  the query rows only, from this layer's own q/k on that input (what `output_attentions` would
  return for it); the reference is dropped at the end of the prefill. Each layer's KV cache therefore holds only
  the tokens that layer saw; decoding with `generate()` attends to exactly those. At a decode
  step after a pruned prefill, the layer's `attention_mask` is replaced the same way.
- language-model post-hook: remembers the cache so that decode steps continue the same plan, and
  stores the prefill's state on the cache object (`CACHE_STATE`), so that a later `generate()`
  continuing that cache (`past_key_values=`, multimodal inputs not passed again), in this or
  another `prune` block, decodes with the tokens each layer kept. A cache filled without vtr is
  continued untouched. When layer 0 itself kept fewer tokens than the input had, it also sets
  the cache's `get_seq_length` (an instance attribute) to report the input positions the cache
  covers (`_input_length`): generate() counts from it which tokens of a continued sequence are new.

Under torch.compile (generate() compiles decode steps for a static cache when a `compile_config`
allows it; `_eager`): after a prefill that removed nothing, every hook of a decode step is a
traced no-op, so the compiled graph is the unpatched model's; after a pruned one the hooks cannot
be traced (data-dependent selection, Python state) and run eagerly between compiled regions, with
a warning (`fullgraph=True` cannot hold them and fails in torch). Compiled code does not notice
hooks added or removed later, so entering and leaving `prune` resets torch.compile's caches
(`torch._dynamo.reset()`, process-wide) when the model or a submodule has been compiled.

Generation: the policy acts at prefill only; decode steps append to each layer's pruned cache and
are never pruned. `generate(use_cache=False)` has no cache, so transformers runs each step as a
new prefill and the policy scores again with the generated tokens present (its tokens may then
differ from `use_cache=True`). Assisted decoding verifies the assistant's first candidates in the
same forward as the prompt (with `logits_to_keep` = candidates + 1): trailing text tokens so
marked are treated as decode steps (never pruned, never a query; `prompt_marks`), so the
selection and the tokens are those of plain pruned greedy decoding. Outputs have one row per
surviving position; the last row is always each sample's last token.

Position ids: "original" (default) keeps every surviving token's original position (the RoPE
phases the model would have used without pruning); "renumber" renumbers survivors consecutively
at each pruning step (1-D RoPE only). Until something is pruned, the model's own tensors pass
through untouched, so a keep-all policy is bit-identical to the unpatched model.

The last token of every sample always survives (also when it is an image token: the layer then
keeps one vision token more than the policy chose), so the output's last row is always the
prompt's last position. It and the text query are marked once per prefill (`prompt_marks`) and
gathered along with the tokens.

Batches: selection is per sample; samples that keep different numbers of tokens are left-padded
inside the layer and masked. A sample without image positions (a text-only item, a text-only turn
of a chat) is never pruned, whatever the policy returns, while the others of its batch are.

Inputs the model accepts but pruning cannot keep right are refused with an `UnsupportedInput`
naming the reason, when the policy first removes a token (before that layer, or the encoder step,
changes anything): so a keep-all policy passes every input through, and nothing is silently wrong.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import time
import warnings
from dataclasses import dataclass, field

import torch

from .. import scores as S
from .adapters import Adapter, adapter_for
from .memo import CAPTURE_SLOT, SELECTION_SLOT
from .policy import EncoderView, LayerView, Policy, UnsupportedInput, last_position

POSITION_MODES = ("original", "renumber")
# Attribute of a KV cache that holds the state of the pruned prefill that filled it (which tokens
# each layer kept, the next positions), so that continuing the cache later decodes consistently.
CACHE_STATE = "_vtr_prefill_state"
COMPILED_WARNING = ("vtr.engine: torch.compile cannot trace the pruning hooks (data-dependent selection and "
                    "Python state); they run eagerly between compiled regions (graph breaks), with the same results")


@dataclass
class _Pass:
    """State of one prefill, carried from layer to layer and then through decode steps."""
    vision: torch.Tensor
    valid: torch.Tensor
    vision_index: torch.Tensor
    text_query: torch.Tensor
    last: torch.Tensor                    # (B, T) bool: each sample's last prompt token (the query "last")
    protect: torch.Tensor                 # (B, T) bool: never pruned (`last` and the trailing candidates)
    origin: torch.Tensor                  # (B, T) long: column of each current position in the input
    pos: torch.Tensor                     # (B, T) or (3, B, T) positions of the current tokens
    follow: int = 0                       # trailing candidate tokens in the prefill (see `prompt_marks`)
    length: int = 0                       # input positions the prefill covered (its T)
    pe: tuple | None = None               # current (cos, sin), once changed
    mask: torch.Tensor | None = None      # current (B, 1, T, T) bool mask, once changed
    fitted: dict = field(default_factory=dict)  # that mask widened to a cache's key width, formatted
    changed: bool = False
    encoder_keep: torch.Tensor | None = None
    layer_valid: list = field(default_factory=list)  # per layer: (B, T_l) valid keys in its cache
    layer_count: list = field(default_factory=list)  # per layer: (B,) tokens it kept (renumber mode)
    done: bool = False                    # the prefill has finished; later calls are decode steps
    prefill_next: torch.Tensor | None = None  # (B,) original position after the prefill's last token
    cache: object = None
    scored: dict = field(default_factory=dict)
    previous: tuple | None = None         # (layer module, its input hidden, its (cos, sin)) of the last layer
    decoded: int = 0                      # tokens in the cache after the prefill's (read from the cache)
    vision_counts: list = field(default_factory=list)
    entered: tuple | None = None          # (layer index, id of the hidden states its hook received)
    imageless: torch.Tensor | None = None  # (B,) bool: samples without image positions (never pruned)
    refusal: str | None = None            # why removing a token from this prefill would be wrong


def prompt_marks(ids: torch.Tensor, valid: torch.Tensor, image_ids, follow: int) -> dict:
    """The one place that decides, per prefill, which positions are vision tokens, the text query,
    each sample's last prompt token, and which positions are never pruned (`marks_from_vision`),
    with the image positions found from the token ids."""
    vision = torch.zeros_like(ids, dtype=torch.bool)
    for i in image_ids:
        vision |= ids == i
    return marks_from_vision(vision, valid, follow)


def marks_from_vision(vision: torch.Tensor, valid: torch.Tensor, follow: int) -> dict:
    """`prompt_marks` from a (B, T) bool mask of image positions.

    `follow` > 0: the last `follow` tokens are candidates appended to the prompt (assisted decoding
    verifies them in the prefill's forward; transformers asks then for `logits_to_keep` =
    follow + 1 rows). They are treated as decode steps: never pruned, never a query, and the query
    "last" is the prompt's own last token, as in a plain generate(). Only text tokens at the end of
    every sample qualify; otherwise the whole input is the prompt. A sample without image
    positions has no vision tokens: nothing of it is ever pruned (`imageless`)."""
    B, T = vision.shape
    device = vision.device
    vision = vision & valid
    ar = torch.arange(T, device=device)
    tail = (ar >= T - follow)[None].expand(B, T)
    if follow and (follow >= T or bool((tail & (vision | ~valid)).any())
                   or not bool((valid & ~tail).any(1).all())):
        follow, tail = 0, torch.zeros_like(vision)
    prompt = valid & ~tail
    has = vision.any(1)
    first = torch.where(has, vision.float().argmax(1), torch.zeros(B, dtype=torch.long, device=device))
    last = last_position(prompt)
    return dict(vision=vision, valid=valid, follow=follow, last=last, protect=last | tail, imageless=~has,
                vision_index=torch.where(vision, vision.long().cumsum(1) - 1, -1),
                text_query=(ar[None] > first[:, None]) & ~vision & prompt,
                origin=ar[None].expand(B, T))


def _padding(mask, B: int, T: int, device) -> tuple[torch.Tensor, str | None]:
    """(valid, refusal): (B, T) bool, which prefill positions are tokens, not padding, from the mask
    the decoder gets: 2-D (B, T), or (static cache, custom masks) a 4-D (B, 1, T, keys) one or a dict
    of 4-D ones by layer type; and why pruning this input would be wrong (None: it can be pruned).

    The model accepts every such mask: the refusal is raised only if the policy removes a token
    (`_Pass.refusal`), so a keep-all policy passes any input through. Refused: right padding (a
    sample whose last column is padding: the rows a caller reads by input column, such as
    `logits[:, -1]` or `attention_mask.sum(1) - 1`, would no longer be those positions once the
    output is shorter) and a 4-D mask that is not causal with padding (pruning replaces the mask by
    one, so any other structure would be lost)."""
    if isinstance(mask, dict):
        mask = mask.get("full_attention", next((m for m in mask.values() if m is not None), None))
    if mask is None:
        return torch.ones(B, T, dtype=torch.bool, device=device), None
    if mask.ndim == 2 and mask.shape == (B, T):
        valid = mask.bool()
    elif mask.ndim == 4 and mask.shape[0] in (1, B) and mask.shape[2] == T and mask.shape[3] >= T:
        # keys 0..T-1 of a prefill are its positions (an empty cache); a token sees itself, padding
        # is masked as a key everywhere, its own row included
        allowed = mask[:, 0, :, :T]
        allowed = (allowed if allowed.dtype == torch.bool else allowed == 0).expand(B, T, T)
        valid = allowed.diagonal(dim1=1, dim2=2)
        rows = _causal_mask(valid)[:, 0] & valid[:, :, None]
        if not torch.equal(allowed & valid[:, :, None], rows):
            return valid, ("a 4-D attention mask that is not causal with padding (a custom mask): pruning "
                           "replaces the mask, so its structure would be lost; pass a 2-D padding mask")
    else:
        return torch.ones(B, T, dtype=torch.bool, device=device), (
            f"attention mask of shape {tuple(mask.shape)} for a prefill of {B} x {T} tokens: expected "
            "(batch, length) or (batch, 1, length, keys)")
    ends = valid.any(1) & ~valid[:, -1]
    if bool(ends.any()):
        b = int(ends.nonzero()[0])
        return valid, (f"sample {b} ends with padding (right padding): its rows would not stay at their "
                       "input columns once pruned; pad on the left")
    return valid, None


def _cached_length(cache) -> int:
    """Tokens stored in layer 0 of a KV cache (its class's count, not `_input_length`)."""
    return int(type(cache).get_seq_length(cache))


def _input_length(cache, st: "_Pass", layer_idx: int = 0):
    """`cache.get_seq_length()` of a cache whose layer 0 kept fewer tokens than the input had: the
    input positions it covers, counted as if nothing had been removed (each layer's stored tokens
    plus those it dropped). generate() counts with it which tokens of a continued sequence are
    new, and the tokens after it are the decoded ones, in every layer alike."""
    stored = type(cache).get_seq_length(cache, layer_idx)
    return stored + (st.length - st.layer_valid[layer_idx].shape[1]) if stored else stored  # reset(): empty


@torch.compiler.disable
def _warn_compiled():
    warnings.warn(COMPILED_WARNING, RuntimeWarning, stacklevel=2)  # shown once per place by default


def _eager(hook, idle):
    """`hook` as registered. Under torch.compile (generate() compiles decode steps for a static
    cache when asked): a no-op while `idle(args, kwargs)` (a decode step after a prefill that
    removed nothing: plain Python checks on the hook's arguments, traced, so the graph is the
    unpatched model's); else it
    runs eagerly, outside the graph, after a warning: its data-dependent selection and Python
    state cannot be traced, and a traced copy must never differ."""
    eager = torch.compiler.disable(hook, recursive=True)

    @functools.wraps(hook)
    def run(*args):
        if torch.compiler.is_compiling():
            if idle(*args):
                return None
            _warn_compiled()
            return eager(*args)
        return hook(*args)
    return run


def _reset_if_compiled(model) -> None:
    """Compiled code does not see hooks added or removed after it was traced (torch skips guards on
    module hooks): once the model or a submodule was compiled (generate()'s compile_config, or
    `Module.compile()`), drop torch.compile's caches, process-wide, so the next call retraces."""
    if hasattr(model, "_compiled_call") or any(getattr(m, "_compiled_call_impl", None) is not None
                                               for m in model.modules()):
        torch._dynamo.reset()


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
        policy.check_model(len(self.layers))
        self.image_ids = self.adapter.image_token_ids(model)
        self.state: _Pass | None = None
        self._input_ids = None
        self._input_embeds = None
        # the model's named forward arguments: the others reach its loss_function (see _top_pre)
        self._forward_params = set(inspect.signature(model.forward).parameters) - {"kwargs"}
        self._follow = 0
        self._labels = None
        self._idle = False  # decode steps after a prefill that removed nothing: every hook a no-op
        self._vision_capture: dict = {}
        self._handles = []
        self.last_stats: dict = {}
        self.select_seconds = 0.0  # time spent in the layer-boundary hooks (scoring + selection + gather)

    # ------------------------------------------------------------------ install / remove
    def install(self):
        _reset_if_compiled(self.model)
        add = self._handles.append
        idle = lambda *hook_args: self._idle  # noqa: E731
        never = lambda *hook_args: False  # noqa: E731
        # the top-level hooks are plain Python (and the loss): traced as they are under compile
        add(self.model.register_forward_pre_hook(self._top_pre, with_kwargs=True))
        add(self.model.register_forward_hook(self._top_post, with_kwargs=True))
        add(self.lm.register_forward_pre_hook(_eager(self._lm_pre, self._idle_step), with_kwargs=True))
        add(self.lm.register_forward_hook(_eager(self._lm_post, idle), with_kwargs=True))
        for i, layer in enumerate(self.layers):
            add(layer.register_forward_pre_hook(_eager(self._make_layer_pre(i), idle), with_kwargs=True))
        if self.policy.uses_encoder:
            layers = self.adapter.vision_layers(self.model)
            feat = layers[self.adapter.feature_layer_index(self.model)]
            add(feat.self_attn.register_forward_pre_hook(_eager(self._vision_attn_pre, never), with_kwargs=True))
            add(feat.register_forward_hook(_eager(self._vision_out, never)))
            # a FeatureCache that serves this batch from its memo refills the capture (see features.py)
            setattr(self.model, CAPTURE_SLOT, self._vision_capture)
        setattr(self.model, SELECTION_SLOT, self._selection)  # for a FeatureCache's pruned-prefix memo
        return self

    def _selection(self):
        """(positions mode, layer index, id of the hidden states that layer's hook received, the
        columns of the input its rows now hold, their validity) of the running prefill, or None.
        What enters a layer is a function of these and of what the previous layer gave, which is
        how a FeatureCache keys a pruned prefix (`vtr.engine.features`)."""
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
        self.state = None
        self._idle = False
        _reset_if_compiled(self.model)  # also code traced inside the block: it calls the hooks

    def _idle_step(self, module, args, kwargs) -> bool:
        """A one-token step on the cache of a prefill that removed nothing (what _lm_pre would
        leave untouched), decided without reading a tensor."""
        st = self.state
        return (self._idle and st is not None and kwargs.get("past_key_values") is st.cache
                and kwargs["inputs_embeds"].shape[1] == 1)

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
        if st is None or not st.done:
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
        if not bool((keep | ~st.last).all()):
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
        self._input_ids = kwargs.get("input_ids", args[0] if args else None)
        # without input_ids the image positions are read from these (in _lm_pre, only at a prefill)
        self._input_embeds = kwargs.get("inputs_embeds") if self._input_ids is None else None
        keep = kwargs.get("logits_to_keep")
        # assisted decoding verifies k - 1 candidate tokens appended to the prompt with k logit rows
        self._follow = keep - 1 if isinstance(keep, int) and keep > 1 else 0
        self._labels = None
        if kwargs.get("labels") is None:
            return None
        if not (keep is None or (isinstance(keep, int) and keep == 0)):  # the model's own loss fails too
            raise UnsupportedInput("labels with logits_to_keep: the loss needs the logits of every position "
                                   "(drop logits_to_keep)")
        # the model's loss would pair the pruned logits with every label: computed in _top_post instead,
        # with what the model passes its loss_function (its extra keyword arguments: shift_labels,
        # num_items_in_batch, ignore_index, ...)
        extra = {k: v for k, v in kwargs.items() if k not in self._forward_params}
        self._labels = (kwargs.pop("labels"), extra)
        return args, kwargs

    def _top_post(self, module, args, kwargs, output):
        if self._labels is None:
            return None
        labels, extra = self._labels
        self._labels = None
        tuple_out = isinstance(output, tuple)
        logits = output[0] if tuple_out else output.logits
        vocab = self.model.config.get_text_config().vocab_size
        st = self.state
        if st is None or not st.changed:  # nothing removed: exactly the model's own loss
            loss = self.model.loss_function(logits=logits, labels=labels, vocab_size=vocab, **extra)
        else:
            # each surviving position predicts the input's next token (its label one column later), or
            # the label `shift_labels` gives its input column (labels already shifted by the caller)
            ignore = extra.get("ignore_index", -100)
            shifted = extra.pop("shift_labels", None)
            if shifted is None:
                shifted = torch.nn.functional.pad(labels, (0, 1), value=ignore)[:, 1:]
            target = torch.gather(shifted.to(st.origin.device), 1, st.origin).masked_fill(~st.valid, ignore)
            loss = self.model.loss_function(logits=logits, labels=None, vocab_size=vocab, shift_labels=target, **extra)
        if tuple_out:
            return (loss,) + output
        return type(output)(loss=loss, **{k: v for k, v in output.items() if k != "loss"})

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
        self._idle = False
        filled = cache is not None and _cached_length(cache) > 0
        if filled and (st is None or cache is not st.cache):
            # continuing a cache filled by an earlier prefill (another `prune` block, another
            # generate() call): the cache carries that prefill's state, so decoding goes on with
            # the tokens each layer kept; a cache filled without vtr holds every token: untouched
            self.state = st = getattr(cache, CACHE_STATE, None)
            if st is None:
                return None
        if filled and st.done and cache is st.cache:
            self._idle = not st.changed
            return self._decode_begin(kwargs, B, T, cache)
        if cache is not None:  # an emptied cache starts afresh (an earlier prefill's marks go)
            for name in (CACHE_STATE, "get_seq_length"):
                vars(cache).pop(name, None)
        valid, refusal = _padding(kwargs.get("attention_mask"), B, T, embeds.device)
        vision = self._image_positions(B, T)
        if vision is None:  # no token ids or embeddings of this shape reached the model: nothing to prune
            vision = torch.zeros(B, T, dtype=torch.bool, device=embeds.device)
        marks = marks_from_vision(vision.to(embeds.device), valid, self._follow if cache is not None else 0)
        try:
            pos = self.adapter.base_positions(kwargs.get("position_ids"), B, T, embeds.device)
        except RuntimeError:  # position ids of another shape: the model's own business unless pruned
            pos = self.adapter.base_positions(None, B, T, embeds.device)
            shape = tuple(kwargs["position_ids"].shape)
            refusal = refusal or f"position_ids of shape {shape}: expected (batch, length)"
        self.state = _Pass(pos=pos, length=T, refusal=refusal, **marks)
        self.policy.start(B)
        if self.policy.uses_encoder:
            kwargs["inputs_embeds"] = self._encoder_step(embeds, marks["vision"])
        return args, kwargs

    def _image_positions(self, B: int, T: int) -> torch.Tensor | None:
        """(B, T) bool: the prefill's image positions, found as the model finds them: from input_ids,
        or when only inputs_embeds were passed, the positions whose embedding equals an image
        token's (transformers' placeholder rule). None when neither matches the prefill's shape."""
        ids, embeds = self._input_ids, self._input_embeds
        self._input_embeds = None  # held from the top-level call to here only
        if ids is not None and ids.shape == (B, T):
            vision = torch.zeros(B, T, dtype=torch.bool, device=ids.device)
            for i in self.image_ids:
                vision |= ids == i
            return vision
        if ids is None and embeds is not None and embeds.shape[:2] == (B, T):
            table = self.model.get_input_embeddings()
            image_ids = torch.tensor(self.image_ids, dtype=torch.long, device=embeds.device)
            tokens = table(image_ids).to(embeds.dtype)
            return (embeds[:, :, None] == tokens).all(-1).any(-1)
        return None

    def _lm_post(self, module, args, kwargs, output):
        st = self.state
        if st is None or st.done:  # decode steps: the cache itself says how far it got
            return None
        st.done = True
        st.previous = None  # frees the last layer's input
        st.cache = getattr(output, "past_key_values", None)
        self._idle = not st.changed and st.cache is not None
        if st.cache is not None:  # a later generate() or prune block may continue this cache
            setattr(st.cache, CACHE_STATE, st)
            if st.layer_valid[0].shape[1] != st.length:
                st.cache.get_seq_length = functools.partial(_input_length, st.cache, st)
        top = st.pos if st.pos.ndim == 2 else st.pos.amax(0)
        st.prefill_next = torch.where(st.valid, top, torch.full_like(top, -1)).amax(1) + 1
        st.layer_count = [v.sum(1) for v in st.layer_valid]
        self.last_stats = {
            "tokens_per_layer": [int(v.sum()) for v in st.layer_valid],
            # per sample and layer: tokens (text + vision) and vision tokens entering the layer
            "token_counts": torch.stack([v.sum(1) for v in st.layer_valid], 1),
            "vision_counts": torch.stack(st.vision_counts, 1),
        }
        return None

    # ------------------------------------------------------------------ prefill: layer boundary
    def _make_layer_pre(self, index: int):
        def hook(module, args, kwargs):
            st = self.state
            if st is None:
                return None
            if st.done:  # decode step
                return self._decode_layer(index, module, args, kwargs)
            t0 = time.perf_counter()
            hidden = args[0] if args else kwargs["hidden_states"]
            st.entered = (index, id(hidden))
            # scores are shared within one layer's hook only: the id() in their keys can be reused by
            # another layer's hidden states once the earlier tensor is freed
            st.scored.clear()
            if st.changed:
                kwargs["attention_mask"], kwargs["position_embeddings"] = self._fit(st.mask, kwargs, index, hidden.dtype), st.pe
                if "position_ids" in kwargs and kwargs["position_ids"] is not None:
                    kwargs["position_ids"] = st.pos if st.pos.ndim == 2 else st.pos[0]
            keep = None
            if index == 0 and st.encoder_keep is not None:
                keep = st.encoder_keep
            here = (module, hidden, kwargs["position_embeddings"])
            source = {"current": here, "previous": st.previous or here}  # layer 0: its own
            view = LayerView(index, hidden, st.vision, st.valid, st.vision_index, st.text_query,
                             lambda q, h, s: self._score(*source[s], q, h),
                             lambda q, s: self._attention(*source[s], q), st.last)
            decided = self.policy.keep_before(index, view)
            if decided is not None:
                keep = decided if keep is None else keep & decided
            if keep is not None:
                keep = keep | st.imageless[:, None]  # a sample without an image passes through whole
            drops_text = getattr(self.policy, "may_drop_text", False)
            if keep is not None and bool(((st.vision if not drops_text else True) & st.valid & ~keep & ~st.protect).any()):
                if st.refusal:
                    raise UnsupportedInput(f"cannot prune this input: {st.refusal}")
                hidden = self._gather(hidden, kwargs, keep, index)
                args = (hidden,) + tuple(args[1:]) if args else args
                if not args:
                    kwargs["hidden_states"] = hidden
            st.previous = (module, hidden, st.pe if st.changed else kwargs["position_embeddings"])
            st.layer_valid.append(st.valid)
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
            last = st.last.long().argmax(1)
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

    def _gather(self, hidden, kwargs, keep, index):
        """Drop unkept vision tokens: compact each sample to the left-padded survivors."""
        st = self.state
        B, T, _ = hidden.shape
        # never the last token, even when it is an image token (a prompt ending with the image): it
        # produces the output, and `logits[:, -1]` must stay the model's next-token row
        if getattr(self.policy, "may_drop_text", False):  # text may go too (CLS-knee stage 2)
            survive = st.valid & (keep | st.protect)
        else:
            survive = st.valid & (keep | ~st.vision | st.protect)
        n = survive.sum(1)
        width = int(n.max())
        # order: padding slots first (left padding), then survivors in original order
        ar = torch.arange(T, device=hidden.device)
        order = torch.sort(torch.where(survive, ar + T, ar), dim=1).indices[:, T - width:]
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
        for name in ("vision", "text_query", "last", "protect"):
            setattr(st, name, torch.gather(getattr(st, name), 1, order) & new_valid)
        st.vision_index = torch.gather(st.vision_index, 1, order)
        st.origin = torch.gather(st.origin, 1, order)
        st.valid = new_valid
        if self.positions == "renumber":
            pos = torch.where(new_valid, new_valid.long().cumsum(1) - 1, torch.zeros_like(pos))
            cos, sin = self.lm.rotary_emb(hidden, self.adapter.rope_position_ids(pos))
        st.pos, st.pe = pos, (cos, sin)
        st.mask, st.fitted = _causal_mask(new_valid), {}
        st.changed = True
        st.scored.clear()
        kwargs["attention_mask"], kwargs["position_embeddings"] = self._fit(st.mask, kwargs, index, hidden.dtype), st.pe
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = pos if pos.ndim == 2 else pos[0]
        return hidden

    def _fit(self, mask: torch.Tensor, kwargs, index: int, dtype, memo: dict | None = None) -> torch.Tensor:
        """The engine's (B, 1, t, k) bool mask over the keys it knows, widened with masked columns
        to the keys layer `index`'s cache returns (a static cache returns all its max_cache_len
        slots, the unwritten ones last), in the attention implementation's format."""
        cache = kwargs.get("past_key_values")
        t, k = mask.shape[-2:]
        width = k
        if cache is not None:
            width, offset = cache.get_mask_sizes(t, index)
            if offset or width < k:
                raise UnsupportedInput(f"layer {index}'s KV cache returns keys {offset}..{offset + width} for "
                                       f"{k} known ones (a sliding-window cache?): not supported under pruning")
        memo = self.state.fitted if memo is None else memo
        if width not in memo:
            if width > k:
                mask = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], width - k)], -1)
            memo[width] = self._format(mask, dtype)
        return memo[width]

    def _format(self, mask: torch.Tensor, dtype) -> torch.Tensor:
        return _additive(mask, dtype) if self._float_mask else mask

    # ------------------------------------------------------------------ encoder step
    def _encoder_step(self, embeds, vision):
        """The policy's encoder step on the images of this prefill (one per sample that has image
        positions; samples without any pass through), its features written into `inputs_embeds`."""
        cap = self._vision_capture
        has = vision.any(1)
        if not bool(has.any()):  # no image in this forward (a text-only turn): nothing to reduce
            cap.clear()
            return embeds
        if "out" not in cap:
            raise UnsupportedInput("the encoder step needs the vision tower to run in this forward (pass pixel_values)")
        out = cap["out"]
        n_vis = vision.sum(1)[has]
        has_cls = self.adapter.cls_token and getattr(self.model.config, "vision_feature_select_strategy", "default") == "default"
        patches = out[:, 1:] if has_cls else out
        B = int(has.sum())
        if out.shape[0] != B or bool((n_vis != patches.shape[1]).any()):
            raise UnsupportedInput("encoder-side reduction needs exactly one image per sample with image "
                                   "tokens, whose patch tokens are the image tokens (not LLaVA-NeXT crops or "
                                   "several images)")
        feats = embeds[has][vision[has]].view(B, -1, embeds.shape[-1])
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
        if self.state.refusal:
            raise UnsupportedInput(f"cannot prune this input: {self.state.refusal}")
        new_feats, keep = result
        embeds = embeds.clone()
        embeds[vision] = new_feats.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        full_keep = torch.ones_like(vision)
        full_keep[vision] = keep.reshape(-1)
        self.state.encoder_keep = full_keep
        return embeds

    # ------------------------------------------------------------------ decode
    def _follow_cache(self, cache):
        """How many tokens the cache holds after the prefill's, read from the cache itself: every
        layer gains the same tokens, and `cache.crop(-n)` (assisted decoding rejecting candidates)
        removes the same n from every layer's end, however many tokens that layer kept."""
        st = self.state
        d = _cached_length(cache) - st.layer_valid[0].shape[1]
        if d < 0:  # cropped into the prefill: only its trailing candidates may go (never pruned, text)
            if -d > st.follow:
                raise UnsupportedInput(f"the KV cache was cropped {-d - st.follow} tokens into the pruned prompt: "
                                       "continuing it is undefined (run the prompt again)")
            st.layer_valid = [v[:, :v.shape[1] + d] for v in st.layer_valid]
            st.layer_count = [c + d for c in st.layer_count]
            st.prefill_next = st.prefill_next + d
            st.length += d
            st.follow += d
            st.fitted = {}
            d = 0
        st.decoded = d

    def _decode_begin(self, kwargs, B, t, cache):
        st = self.state
        if not st.changed:
            return None  # nothing was pruned: the model's own masks and positions are right
        self._follow_cache(cache)
        am = kwargs.get("attention_mask")
        pos = st.prefill_next[:, None] + st.decoded + torch.arange(t, device=st.prefill_next.device)[None]
        kwargs["position_ids"] = self.adapter.rope_position_ids(pos)
        if am is None or (isinstance(am, torch.Tensor) and am.ndim == 2):
            # a 2-D mask must match layer 0's cache (which may itself be pruned); a 4-D one (static
            # cache) is passed through: every layer gets its own mask below
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
        kwargs["attention_mask"] = self._fit(mask, kwargs, index, hidden.dtype, memo={})
        if self.positions == "renumber":
            pos = st.layer_count[index][:, None] + st.decoded + torch.arange(t, device=past.device)[None]
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
