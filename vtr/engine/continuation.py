"""Continuing an unpruned prefill from a decoder layer with fewer tokens
(`PruningSession.logits_from_layer`): what a policy dropping the others right before that layer
computes, without recomputing the layers before it. DyVTE's label collection uses it: one prefill,
then one cheap suffix per exit layer instead of L - 1 full runs."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .compaction import compaction, take, take_positions
from .masks import causal_mask, formatted

if TYPE_CHECKING:
    from .core import PruningSession


@torch.no_grad()
def logits_from_layer(s: PruningSession, start: int, hidden: torch.Tensor,
                      keep: torch.Tensor) -> torch.Tensor:
    """Last-token logits of `s`'s last prefill continued from decoder layer `start` with only the
    tokens in `keep` (B, T). `hidden` is what entered layer `start` in that prefill
    (`output_hidden_states[start]`), which must have been unpruned (a keep-all policy such as
    `Policy()`), so positions and padding are the model's own. Modifies nothing."""
    st = s.state
    if st is None or not st.done:
        raise RuntimeError("logits_from_layer continues a prefill: run the model inside this session first")
    if st.changed or st.encoder_mask is not None:
        raise RuntimeError("logits_from_layer needs an unpruned prefill (run it under a keep-all Policy())")
    if not 0 <= start < len(s.layers):
        raise ValueError(f"start layer {start} outside 0..{len(s.layers) - 1}")
    B, T = st.valid.shape
    if hidden.shape[:2] != (B, T) or keep.shape != (B, T):
        raise ValueError(f"hidden {tuple(hidden.shape[:2])} / keep {tuple(keep.shape)} do not match the "
                         f"prefill's (batch, length) = {(B, T)}")
    keep = keep & st.valid
    if not bool((keep | ~st.last).all()):
        raise ValueError("keep must contain each sample's last token (it produces the logits)")
    order, valid = compaction(keep)  # the layout of a pruning step
    h = take(hidden, order)
    pos = take_positions(st.pos, order)
    pe = s.lm.rotary_emb(h, pos)
    mask = formatted(causal_mask(valid), h.dtype, s.float_mask)
    ids = pos if pos.ndim == 2 else pos[0]
    for layer in s.layers[start:]:
        out = layer(h, attention_mask=mask, position_ids=ids, position_embeddings=pe)
        h = out[0] if isinstance(out, tuple) else out
    return s.model.get_output_embeddings()(s.lm.norm(h[:, -1]))
