"""Selection and gather at a prefill's layer boundaries.

Before layer l, the decoder layer's pre-hook asks the policy which vision tokens survive and
gathers `hidden_states`, `position_embeddings` (cos, sin) and `position_ids` accordingly
(`vtr.engine.compaction`), and passes a 4-D mask (causal, padding-aware, per sample; boolean for
SDPA, additive for eager), widened with masked columns to the keys the layer's cache returns (a
static cache: all max_cache_len slots; `vtr.engine.masks`). Each layer's KV cache therefore holds
only the tokens that layer saw; decoding with `generate()` attends to exactly those
(`vtr.engine.decode`).

Each hook keeps a reference to what entered its layer (hidden states after the gather, cos/sin),
so that the next layer's policy can score with this layer's attention (`source="previous"`,
`vtr.engine.scoring`); the reference is dropped at the end of the prefill.

Position ids: "original" (default) keeps every surviving token's original position (the RoPE
phases the model would have used without pruning); "renumber" renumbers survivors consecutively
at each pruning step (1-D RoPE only). Until something is pruned, the model's own tensors pass
through untouched, so a keep-all policy is bit-identical to the unpatched model.

The last token of every sample always survives (also when it is an image token: the layer then
keeps one vision token more than the policy chose), so the output's last row is always the
prompt's last position. Batches: selection is per sample; samples that keep different numbers of
tokens are left-padded inside the layer and masked. A sample without image positions is never
pruned, whatever the policy returns, while the others of its batch are. An input that pruning
cannot keep right is refused (`UnsupportedInput`, with the reason `vtr.engine.inputs` found) when
the policy first removes a token, before that layer changes anything."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from . import scoring
from .compaction import compaction, take, take_positions
from .masks import causal_mask
from .policy import LayerView, UnsupportedInput

if TYPE_CHECKING:
    from .core import PruningSession


@dataclass
class Prefill:
    """State of one prefill, carried from layer to layer."""
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
    encoder_mask: torch.Tensor | None = None  # (B, T) positions the encoder step kept (None: all)
    layer_valid: list = field(default_factory=list)  # per layer: (B, T_l) valid keys in its cache
    done: bool = False                    # the prefill has finished
    scored: dict = field(default_factory=dict)
    previous: tuple | None = None         # (layer module, its input hidden, its (cos, sin)) of the last layer
    vision_counts: list = field(default_factory=list)
    entered: tuple | None = None          # (layer index, id of the hidden states its hook received)
    imageless: torch.Tensor | None = None  # (B,) bool: samples without image positions (never pruned)
    refusal: str | None = None            # why removing a token from this prefill would be wrong


def before_layer(s: PruningSession, index: int, module, args, kwargs):
    """Decoder layer `index`'s pre-hook at a prefill: the policy's selection, then the gather."""
    st = s.state
    t0 = time.perf_counter()
    hidden = args[0] if args else kwargs["hidden_states"]
    st.entered = (index, id(hidden))
    # scores are shared within one layer's hook only: the id() in their keys can be reused by
    # another layer's hidden states once the earlier tensor is freed
    st.scored.clear()
    if st.changed:
        kwargs["attention_mask"] = s.fit(st.mask, kwargs, index, hidden.dtype)
        kwargs["position_embeddings"] = st.pe
        if "position_ids" in kwargs and kwargs["position_ids"] is not None:
            kwargs["position_ids"] = st.pos if st.pos.ndim == 2 else st.pos[0]
    keep = None
    if index == 0 and st.encoder_mask is not None:
        keep = st.encoder_mask
    here = (module, hidden, kwargs["position_embeddings"])
    source = {"current": here, "previous": st.previous or here}  # layer 0: its own
    view = LayerView(index, hidden, st.vision, st.valid, st.vision_index, st.text_query,
                     lambda q, h, src: scoring.score(st, *source[src], q, h),
                     lambda q, src: scoring.attention(st, *source[src], q), st.last,
                     lambda src: scoring.keys(st, *source[src]))
    decided = s.policy.keep_before(index, view)
    if decided is not None:
        keep = decided if keep is None else keep & decided
    if keep is not None:
        keep = keep | st.imageless[:, None]  # a sample without an image passes through whole
    drops_text = getattr(s.policy, "may_drop_text", False)
    removable = st.vision if not drops_text else True
    if keep is not None and bool((removable & st.valid & ~keep & ~st.protect).any()):
        if st.refusal:
            raise UnsupportedInput(f"cannot prune this input: {st.refusal}")
        hidden = gather(s, hidden, kwargs, keep, index)
        args = (hidden,) + tuple(args[1:]) if args else args
        if not args:
            kwargs["hidden_states"] = hidden
    st.previous = (module, hidden, st.pe if st.changed else kwargs["position_embeddings"])
    st.layer_valid.append(st.valid)
    st.vision_counts.append((st.vision & st.valid).sum(1))
    s.select_seconds += time.perf_counter() - t0
    return args, kwargs


def gather(s: PruningSession, hidden, kwargs, keep, index):
    """Drop unkept vision tokens: compact each sample to the left-padded survivors."""
    st = s.state
    B = hidden.shape[0]
    # never the last token, even when it is an image token (a prompt ending with the image): it
    # produces the output, and `logits[:, -1]` must stay the model's next-token row
    if getattr(s.policy, "may_drop_text", False):  # text may go too (CLS-knee stage 2)
        survive = st.valid & (keep | st.protect)
    else:
        survive = st.valid & (keep | ~st.vision | st.protect)
    order, new_valid = compaction(survive)
    hidden = take(hidden, order)
    cos, sin = st.pe if st.changed else kwargs["position_embeddings"]
    cos, sin = take(cos.expand(B, -1, -1), order), take(sin.expand(B, -1, -1), order)
    pos = take_positions(st.pos, order)
    for name in ("vision", "text_query", "last", "protect"):
        setattr(st, name, torch.gather(getattr(st, name), 1, order) & new_valid)
    st.vision_index = torch.gather(st.vision_index, 1, order)
    st.origin = torch.gather(st.origin, 1, order)
    st.valid = new_valid
    if s.positions == "renumber":
        pos = torch.where(new_valid, new_valid.long().cumsum(1) - 1, torch.zeros_like(pos))
        cos, sin = s.rotary(hidden, pos)
    st.pos, st.pe = pos, (cos, sin)
    st.mask, st.fitted = causal_mask(new_valid), {}
    st.changed = True
    st.scored.clear()
    kwargs["attention_mask"] = s.fit(st.mask, kwargs, index, hidden.dtype)
    kwargs["position_embeddings"] = st.pe
    if kwargs.get("position_ids") is not None:
        kwargs["position_ids"] = pos if pos.ndim == 2 else pos[0]
    return hidden
