"""Reusing the image encoder's output across evaluations of the same images.

No supported policy changes what the vision tower and projector compute for an image: decoder-side
policies remove tokens inside the decoder, and encoder-side ones (VisionZip, PruMerge, ToMe,
CLS-knee) read the tower's feature layer and then select or merge its output. A search scores tens
of plans on the same validation images, and the methods table runs many methods on the same test
images: encoding each image batch once saves about half of the testbed's compute (its vision
tower costs about as much as its decoder).

`FeatureCache.attached(model)` patches one thing: the instance attribute `get_image_features` of
the module that owns it (`model.model` for every supported family), with a memo keyed by the
digest of the call's tensors (pixel values, image sizes / grid). The memo keeps the projected
features (`pooler_output`), not the tower's hidden states. When `vtr.engine.prune` with an encoder
step is active, it exposes its capture of the tower's feature layer (that
layer's attention input and its output) as `model._vtr_vision_capture`; the memo then stores that
capture with the features and refills it on a hit, so the encoder step sees exactly what the tower
gave. An entry stored without a capture is recomputed the first time a capture is needed. With
`decoder_layers=N` it also patches the instance attribute `forward` of the first N decoder layers
and adds a pre-hook on the decoder, to reuse those layers' outputs of unpruned runs (see
`FeatureCache._attach_decoder`). With `prefix_bytes > 0` it also reuses the decoder layers of
*pruned* prefixes: a search scores many plans that agree on their first layers (every probe of
G-Search's binary search at layer l shares layers < l), and what enters layer l is a function of the
batch and of which input columns each earlier layer kept, which `prune` exposes
(`model._vtr_selection`). Such an output is kept from the second time its key is seen, so
one-off plans do not flush the prefixes the next probes share. Exiting the block removes every
patch. Prefill timings must never run inside it (`vtr.timing.prefill_speedup` and `vtr bench` do
not).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .lru import LRU, nbytes

CAPTURE_SLOT = "_vtr_vision_capture"  # set by vtr.engine.core.PruningSession for encoder-side policies
SELECTION_SLOT = "_vtr_selection"  # set by PruningSession: which input columns the running layer holds


def _digest(args, kwargs) -> str:
    h = hashlib.blake2b(digest_size=20)

    def add(v):
        if isinstance(v, torch.Tensor):
            t = v.detach().contiguous().cpu()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(v, (list, tuple)):
            h.update(f"[{len(v)}".encode())
            for x in v:
                add(x)
        else:
            h.update(repr(v).encode())

    for name, v in [("", a) for a in args] + sorted(kwargs.items(), key=lambda kv: kv[0]):
        h.update(name.encode())
        add(v)
    return h.hexdigest()


@dataclass
class ImageFeatures:
    """A memoised `get_image_features` result, and the tower capture of the same call (None: the
    call ran without an encoder step reading the tower)."""
    features: BaseModelOutputWithPooling
    capture: dict | None

    @property
    def nbytes(self) -> int:
        return nbytes(self.features.pooler_output) + nbytes(self.capture)


@dataclass
class LayerOutput:
    """A memoised decoder layer's output (a tensor or the layer's tuple)."""
    output: object

    @property
    def nbytes(self) -> int:
        return nbytes(self.output)


@dataclass
class Chain:
    """The running prefill's memo chain: its key, the last layer served or run, that layer's output
    and whether tokens were removed before it."""
    key: str
    index: int
    output: torch.Tensor
    pruned: bool


def _entry_bytes(entry) -> int:
    return entry.nbytes


class FeatureCache:
    """Memo of `get_image_features` per input batch, bounded by `max_bytes` (least recently used
    entries go first). One cache belongs to one model: attaching it to another raises.

    `unpruned` holds what every policy computes alike on a batch (image features, and with
    `decoder_layers` the first decoder layers' outputs before anything is removed); `pruned`
    (`prefix_bytes` > 0) the decoder layers' outputs of pruned prefixes."""

    def __init__(self, max_bytes: int = 1 << 30, decoder_layers: int = 0, prefix_bytes: int = 0):
        self.max_bytes = max_bytes
        self.decoder_layers = decoder_layers  # also memoise the first decoder layers (see _attach_decoder)
        self.prefix_bytes = prefix_bytes  # and every layer of pruned prefixes, in a memo of this size
        self.unpruned = LRU(max_bytes, _entry_bytes)
        self.pruned = LRU(prefix_bytes, _entry_bytes, second_sight=True)
        self._model_id: int | None = None
        self._chain: Chain | None = None
        self.hits = self.misses = 0
        self.layer_hits = self.layer_misses = 0
        self.prefix_hits = self.prefix_misses = 0

    def __len__(self) -> int:
        return len(self.unpruned)

    @property
    def _bytes(self) -> int:
        """Bytes held by the `unpruned` memo (what `max_bytes` bounds)."""
        return self.unpruned.nbytes

    @contextlib.contextmanager
    def attached(self, model):
        owner = model.model
        if not hasattr(owner, "get_image_features"):
            raise TypeError(f"{type(model).__name__}: no get_image_features to reuse")
        if self._model_id is None:
            self._model_id = id(model)
        elif self._model_id != id(model):
            raise ValueError("this FeatureCache holds another model's features; use one cache per model")
        if "get_image_features" in vars(owner):
            raise RuntimeError("get_image_features is already patched on this model (nested FeatureCache?)")
        original = owner.get_image_features

        @functools.wraps(original)  # generate() reads the signature to route pixel_values to it
        def memo(*args, **kwargs):
            if kwargs.get("return_dict") is not True:  # every supported forward asks for the output object
                return original(*args, **kwargs)
            capture = getattr(model, CAPTURE_SLOT, None)  # a dict when an encoder step reads the tower
            key = _digest(args, kwargs)
            entry = self.unpruned.get(key)
            if entry is not None and (capture is None or entry.capture is not None):
                self.hits += 1
                if capture is not None:
                    capture.update(entry.capture)
                return entry.features
            self.misses += 1
            out = original(*args, **kwargs)  # the engine's hooks fill `capture` during this call
            slim = BaseModelOutputWithPooling(pooler_output=out.pooler_output)
            # replaces an entry stored without a capture
            self.unpruned.put(key, ImageFeatures(slim, dict(capture) if capture else None))
            return slim

        owner.get_image_features = memo
        undo = self._attach_decoder(model) if self.decoder_layers > 0 or self.prefix_bytes > 0 else []
        try:
            yield self
        finally:
            del owner.get_image_features
            for u in undo:
                u()
            self._chain = None

    def _attach_decoder(self, model) -> list:
        """Memoise decoder-layer outputs: of the first `decoder_layers` layers of unpruned prefills,
        and (with `prefix_bytes`) of every layer of pruned ones.

        A layer's output depends only on its inputs. While nothing has been removed, those are the
        same for every policy run on the same batch (same embeddings, mask and positions): keyed by
        the digest of the decoder's call (embeddings, mask, positions). Layer l is served only if it
        receives, as the very same tensor object, the output of layer l - 1 of that chain, or the
        rows the engine gathered from exactly that tensor before layer l: the key then
        grows by the input columns the rows hold and their validity (with the position mode, this
        fixes the layer's hidden states, mask and rotary phases). Anything else (hidden states
        from elsewhere, no `prune` to say what was gathered) ends the chain and every later layer
        runs as usual. Bypassed under autograd and with a KV cache (a memoised layer would not
        write its cache). Patches the instance attribute `forward` of those layers and adds a
        pre-hook on the decoder; both are removed on exit."""
        from .adapters import adapter_for

        adapter = adapter_for(model)
        lm, layers = adapter.language_model(model), adapter.layers(model)

        def lm_pre(module, args, kwargs):
            self._chain = None
            cached = kwargs.get("past_key_values") is not None or kwargs.get("use_cache")
            if torch.is_grad_enabled() or cached:
                return
            embeds = kwargs.get("inputs_embeds")
            if embeds is None:
                return
            self._chain = Chain(_digest(args, kwargs), -1, embeds, False)

        def extend(chain, index, hidden):
            """(chain key, pruned) for layer `index` receiving `hidden`, or None to stop."""
            if hidden is chain.output:
                return chain.key, chain.pruned
            selection = getattr(model, SELECTION_SLOT, None)
            found = selection() if selection is not None else None
            if found is None or found[1] != index or found[2] != id(chain.output) or not self.prefix_bytes:
                return None
            mode, _, _, origin, valid = found
            h = hashlib.blake2b(f"{chain.key}|{index}|{mode}|{tuple(origin.shape)}".encode(), digest_size=20)
            h.update(origin.detach().contiguous().cpu().numpy().tobytes())
            h.update(valid.detach().contiguous().cpu().numpy().tobytes())
            return h.hexdigest(), True

        def patch(index, layer):
            if "forward" in vars(layer):
                raise RuntimeError(f"decoder layer {index} already has a patched forward "
                                   "(nested FeatureCache?)")
            original = layer.forward

            def forward(*args, **kwargs):
                hidden = args[0] if args else kwargs.get("hidden_states")
                chain = self._chain
                found = None
                if chain is not None and chain.index == index - 1 and not torch.is_grad_enabled():
                    found = extend(chain, index, hidden)
                if found is None:
                    self._chain = None
                    return original(*args, **kwargs)
                base, pruned = found
                key = f"{base}/layer{index}"
                if not pruned and index < self.decoder_layers:
                    out = self._layer(self.unpruned, key, original, args, kwargs)
                elif self.prefix_bytes:
                    out = self._layer(self.pruned, key, original, args, kwargs)
                else:
                    out = original(*args, **kwargs)
                self._chain = Chain(base, index, out[0] if isinstance(out, tuple) else out, pruned)
                return out

            layer.forward = forward
            return lambda: delattr(layer, "forward")

        n = len(layers) if self.prefix_bytes else self.decoder_layers
        undo = [patch(i, layer) for i, layer in enumerate(layers[:n])]
        handle = lm.register_forward_pre_hook(lm_pre, with_kwargs=True)
        return undo + [handle.remove]

    def _layer(self, memo: LRU, key: str, original, args, kwargs):
        """A layer's output from `memo`, or computed and offered to it."""
        unpruned = memo is self.unpruned
        entry = memo.get(key)
        if entry is not None:
            if unpruned:
                self.layer_hits += 1
            else:
                self.prefix_hits += 1
            return entry.output
        if unpruned:
            self.layer_misses += 1
        else:
            self.prefix_misses += 1
        out = original(*args, **kwargs)
        memo.offer(key, LayerOutput(out))
        return out
