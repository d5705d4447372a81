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
features (`pooler_output`), not the tower's hidden states. When a pruning session with an encoder
step is installed (`vtr.engine.prune`), it exposes its capture of the tower's feature layer (that
layer's attention input and its output) as `model._vtr_vision_capture`; the memo then stores that
capture with the features and refills it on a hit, so the encoder step sees exactly what the tower
gave. An entry stored without a capture is recomputed the first time a capture is needed. With
`decoder_layers=N` it also patches the instance attribute `forward` of the first N decoder layers
and adds a pre-hook on the decoder, to reuse those layers' outputs of unpruned runs (see
`FeatureCache._attach_decoder`). Exiting the block removes every patch. Prefill timings must never
run inside it (`vtr.timing.prefill_speedup` and `vtr bench` do not).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import OrderedDict

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

CAPTURE_SLOT = "_vtr_vision_capture"  # set by vtr.engine.core.PruningSession for encoder-side policies


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


def _nbytes(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(v) for v in x)
    return 0


class FeatureCache:
    """Memo of `get_image_features` per input batch, bounded by `max_bytes` (least recently used
    entries go first). One cache belongs to one model: attaching it to another raises."""

    def __init__(self, max_bytes: int = 1 << 30, decoder_layers: int = 0):
        self.max_bytes = max_bytes
        self.decoder_layers = decoder_layers  # also memoise the first decoder layers (see _attach_decoder)
        self._memo: OrderedDict[str, object] = OrderedDict()
        self._bytes = 0
        self._model_id: int | None = None
        self._chain: tuple | None = None  # (key, index of the last layer, its output) of the running prefill
        self.hits = self.misses = 0
        self.layer_hits = self.layer_misses = 0

    def __len__(self) -> int:
        return len(self._memo)

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
            entry = self._memo.get(key)
            if entry is not None and (capture is None or entry[1] is not None):
                self.hits += 1
                self._memo.move_to_end(key)
                if capture is not None:
                    capture.update(entry[1])
                return entry[0]
            self.misses += 1
            out = original(*args, **kwargs)  # the session's hooks fill `capture` during this call
            slim = BaseModelOutputWithPooling(pooler_output=out.pooler_output)
            self._store(key, (slim, dict(capture) if capture else None))
            return slim

        owner.get_image_features = memo
        undo = self._attach_decoder(model) if self.decoder_layers > 0 else []
        try:
            yield self
        finally:
            del owner.get_image_features
            for u in undo:
                u()
            self._chain = None

    def _attach_decoder(self, model) -> list:
        """Memoise the outputs of the first `decoder_layers` decoder layers of unpruned prefills.

        A layer's output depends only on its inputs; while nothing has been removed, those are the
        same for every policy run on the same batch (same embeddings, mask and positions). Keyed by
        the digest of the decoder's call (embeddings, mask, positions); layer l is served only if it
        receives, as the very same tensor object, the output of layer l - 1 of that chain: the engine
        replaces the hidden states (and then masks and positions) when it removes a token, so from
        the first removal on every layer runs as usual. Bypassed under autograd and with a KV cache
        (a memoised layer would not write its cache). Patches the instance attribute `forward` of
        those layers and adds a pre-hook on the decoder; both are removed on exit."""
        from .adapters import adapter_for

        adapter = adapter_for(model)
        lm, layers = adapter.language_model(model), adapter.layers(model)

        def lm_pre(module, args, kwargs):
            self._chain = None
            if torch.is_grad_enabled() or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
                return
            embeds = kwargs.get("inputs_embeds")
            if embeds is None:
                return
            self._chain = (_digest(args, kwargs), -1, embeds)

        def patch(index, layer):
            if "forward" in vars(layer):
                raise RuntimeError(f"decoder layer {index} already has a patched forward (nested FeatureCache?)")
            original = layer.forward

            def forward(*args, **kwargs):
                hidden = args[0] if args else kwargs.get("hidden_states")
                chain = self._chain
                if chain is None or chain[1] != index - 1 or hidden is not chain[2] or torch.is_grad_enabled():
                    self._chain = None
                    return original(*args, **kwargs)
                key = f"{chain[0]}/layer{index}"
                entry = self._memo.get(key)
                if entry is not None:
                    self.layer_hits += 1
                    self._memo.move_to_end(key)
                    out = entry[1]
                else:
                    self.layer_misses += 1
                    out = original(*args, **kwargs)
                    self._store(key, ("layer", out))
                self._chain = (chain[0], index, out[0] if isinstance(out, tuple) else out)
                return out

            layer.forward = forward
            return lambda: delattr(layer, "forward")

        undo = [patch(i, layer) for i, layer in enumerate(layers[: self.decoder_layers])]
        handle = lm.register_forward_pre_hook(lm_pre, with_kwargs=True)
        return undo + [handle.remove]

    def _store(self, key: str, entry: tuple) -> None:
        if key in self._memo:  # an entry without a capture, replaced by one with it
            self._bytes -= self._size(self._memo.pop(key))
        size = self._size(entry)
        if size > self.max_bytes:
            return
        self._memo[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._memo.popitem(last=False)
            self._bytes -= self._size(old)

    @staticmethod
    def _size(entry: tuple) -> int:
        if isinstance(entry[0], str):  # ("layer", output of a decoder layer)
            return _nbytes(entry[1])
        slim, capture = entry
        return _nbytes(slim.pooler_output) + (_nbytes(list(capture.values())) if capture else 0)
