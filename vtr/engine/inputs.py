"""What a prefill's input says before anything is pruned: which positions are image tokens, the
text query, each sample's last prompt token, the trailing candidates of assisted decoding
(`prompt_marks`), and which positions are padding (`padding`).

Image positions are found from the image token id(s), never from offsets, or without `input_ids`
from `inputs_embeds` (where the embedding equals an image token's, the rule transformers itself
uses). Padding is read from the mask the decoder gets: 2-D, or the 4-D mask / dict of them that
generate() passes with a static cache. Inputs the model accepts but pruning cannot keep right
(right padding, a 4-D mask that is not causal with padding) are not refused here: the reason is
kept and raised only if the policy removes a token, so a keep-all policy passes every input
through."""
from __future__ import annotations

import torch

from .masks import causal_mask
from .policy import last_position


def vision_from_ids(ids: torch.Tensor, image_ids) -> torch.Tensor:
    """(B, T) bool: the positions holding one of the image token ids."""
    vision = torch.zeros_like(ids, dtype=torch.bool)
    for i in image_ids:
        vision |= ids == i
    return vision


def image_positions(model, image_ids, ids, embeds, B: int, T: int) -> torch.Tensor | None:
    """(B, T) bool: the prefill's image positions, found as the model finds them: from `ids`, or when
    only `embeds` were passed, the positions whose embedding equals an image token's (transformers'
    placeholder rule). None when neither matches the prefill's shape."""
    if ids is not None and ids.shape == (B, T):
        return vision_from_ids(ids, image_ids)
    if ids is None and embeds is not None and embeds.shape[:2] == (B, T):
        table = model.get_input_embeddings()
        tokens = table(torch.tensor(image_ids, dtype=torch.long, device=embeds.device)).to(embeds.dtype)
        return (embeds[:, :, None] == tokens).all(-1).any(-1)
    return None


def prompt_marks(ids: torch.Tensor, valid: torch.Tensor, image_ids, follow: int) -> dict:
    """The one place that decides, per prefill, which positions are vision tokens, the text query,
    each sample's last prompt token, and which positions are never pruned (`marks_from_vision`),
    with the image positions found from the token ids."""
    return marks_from_vision(vision_from_ids(ids, image_ids), valid, follow)


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


def padding(mask, B: int, T: int, device) -> tuple[torch.Tensor, str | None]:
    """(valid, refusal): (B, T) bool, which prefill positions are tokens, not padding, from the mask
    the decoder gets: 2-D (B, T), or (static cache, custom masks) a 4-D (B, 1, T, keys) one or a dict
    of 4-D ones by layer type; and why pruning this input would be wrong (None: it can be pruned).

    The model accepts every such mask: the refusal is raised only if the policy removes a token
    (`Prefill.refusal`), so a keep-all policy passes any input through. Refused: right padding (a
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
        rows = causal_mask(valid)[:, 0] & valid[:, :, None]
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

