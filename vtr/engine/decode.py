"""Decode steps after a pruned prefill: the policy acts at prefill only; decode steps append to each
layer's pruned KV cache and are never pruned.

`PrunedCache` is the state a KV cache filled by a pruned prefill needs to be continued (which
tokens each layer kept, the next positions); it is attached to the cache (`attach`), so a later
`generate()` continuing that cache (`past_key_values=`, multimodal inputs not passed again), in
this or another `prune` block, decodes with the tokens each layer kept. A cache filled without vtr
is continued untouched.

At a decode step the decoder's pre-hook replaces `position_ids` (and a 2-D `attention_mask`) by
ones consistent with the pruned cache (`PrunedCache.begin`), and each layer's pre-hook its
`attention_mask` (`PrunedCache.layer_inputs`). How many tokens were decoded is read from the cache,
so a `cache.crop()` (assisted decoding dropping rejected candidates from every layer's end) is
followed.

When layer 0 itself kept fewer tokens than the input had, the cache's `get_seq_length` reports
the input positions the cache covers (`PrunedCache.seq_length`, set as the cache instance's
method): generate() reads that method to count which tokens of a continued sequence are new, so
it is the one method of the cache that must answer for the pruned prefill."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .masks import fit_mask
from .policy import UnsupportedInput

# Attribute of a KV cache that holds the `PrunedCache` of the prefill that filled it.
CACHE_STATE = "_vtr_prefill_state"


def cached_length(cache) -> int:
    """Tokens stored in layer 0 of a KV cache (its class's count, not `PrunedCache.seq_length`)."""
    return int(type(cache).get_seq_length(cache))


def pruned_state(cache) -> PrunedCache | None:
    """The state attached to `cache` by the prefill that filled it (None: filled without vtr)."""
    return getattr(cache, CACHE_STATE, None)


def forget(cache) -> None:
    """Detach an earlier prefill's state from an emptied cache that a new prefill fills afresh."""
    for name in (CACHE_STATE, "get_seq_length"):
        vars(cache).pop(name, None)


@dataclass
class PrunedCache:
    """A KV cache filled by a prefill under `prune`, and what continuing it needs."""
    cache: object
    changed: bool                  # the prefill removed tokens (else decoding needs nothing)
    layer_valid: list              # per layer: (B, T_l) valid keys in its cache
    layer_count: list              # per layer: (B,) tokens it kept (renumber mode)
    prefill_next: torch.Tensor     # (B,) original position after the prefill's last token
    length: int                    # input positions the prefill covered (its T)
    follow: int                    # trailing candidate tokens in the prefill (see `prompt_marks`)
    decoded: int = 0               # tokens in the cache after the prefill's (read from the cache)

    @classmethod
    def attach(cls, prefill, cache) -> PrunedCache:
        """The state of the finished prefill `prefill` (a `Prefill`), attached to the cache it filled."""
        top = prefill.pos if prefill.pos.ndim == 2 else prefill.pos.amax(0)
        valid = list(prefill.layer_valid)
        state = cls(cache, prefill.changed, valid, [v.sum(1) for v in valid],
                    torch.where(prefill.valid, top, torch.full_like(top, -1)).amax(1) + 1,
                    prefill.length, prefill.follow)
        setattr(cache, CACHE_STATE, state)
        if state.layer_valid[0].shape[1] != state.length:
            cache.get_seq_length = state.seq_length
        return state

    def seq_length(self, layer_idx: int = 0) -> int:
        """`cache.get_seq_length()` of a cache whose layer 0 kept fewer tokens than the input had: the
        input positions it covers, counted as if nothing had been removed (each layer's stored tokens
        plus those it dropped). generate() counts with it which tokens of a continued sequence are
        new, and the tokens after it are the decoded ones, in every layer alike."""
        stored = type(self.cache).get_seq_length(self.cache, layer_idx)
        # reset() empties the cache: nothing to add then
        return stored + (self.length - self.layer_valid[layer_idx].shape[1]) if stored else stored

    def _follow_cache(self) -> None:
        """How many tokens the cache holds after the prefill's, read from the cache itself: every
        layer gains the same tokens, and `cache.crop(-n)` (assisted decoding rejecting candidates)
        removes the same n from every layer's end, however many tokens that layer kept."""
        d = cached_length(self.cache) - self.layer_valid[0].shape[1]
        if d < 0:  # cropped into the prefill: only its trailing candidates may go (never pruned, text)
            if -d > self.follow:
                raise UnsupportedInput(f"the KV cache was cropped {-d - self.follow} tokens into the pruned "
                                       "prompt: continuing it is undefined (run the prompt again)")
            self.layer_valid = [v[:, :v.shape[1] + d] for v in self.layer_valid]
            self.layer_count = [c + d for c in self.layer_count]
            self.prefill_next = self.prefill_next + d
            self.length += d
            self.follow += d
            d = 0
        self.decoded = d

    def begin(self, kwargs, B: int, t: int, adapter):
        """The decoder's arguments for a decode step of `t` tokens: positions after the prefill's
        original ones, a 2-D mask matching layer 0's (maybe pruned) cache. None: nothing to change."""
        if not self.changed:
            return None  # nothing was pruned: the model's own masks and positions are right
        self._follow_cache()
        am = kwargs.get("attention_mask")
        ar = torch.arange(t, device=self.prefill_next.device)
        pos = self.prefill_next[:, None] + self.decoded + ar[None]
        kwargs["position_ids"] = adapter.rope_position_ids(pos)
        if am is None or (isinstance(am, torch.Tensor) and am.ndim == 2):
            # a 2-D mask must match layer 0's cache (which may itself be pruned); a 4-D one (static
            # cache) is passed through: every layer gets its own mask in `layer_inputs`
            first = self.layer_valid[0]
            kwargs["attention_mask"] = torch.cat(
                [first, torch.ones(B, self.decoded + t, dtype=first.dtype, device=first.device)], 1).long()
        return (), kwargs

    def layer_inputs(self, index: int, args, kwargs, float_mask: bool, rotary):
        """Layer `index`'s arguments at a decode step: a mask over the keys its cache kept and the
        new tokens, and with renumbered positions (`rotary` set) its own rotary phases."""
        if not self.changed:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        B, t, _ = hidden.shape
        past = self.layer_valid[index]
        prev = torch.cat([past, torch.ones(B, self.decoded, dtype=torch.bool, device=past.device)], 1)
        causal = torch.ones(t, t, dtype=torch.bool, device=past.device).tril()
        mask = torch.cat([prev[:, None, None, :].expand(B, 1, t, prev.shape[1]),
                          causal[None, None].expand(B, 1, t, t)], -1)
        cache = kwargs.get("past_key_values")
        kwargs["attention_mask"] = fit_mask(mask, cache, index, hidden.dtype, float_mask, {})
        if rotary is not None:
            pos = self.layer_count[index][:, None] + self.decoded + torch.arange(t, device=past.device)[None]
            kwargs["position_embeddings"] = rotary(hidden, pos)
        return args, kwargs
