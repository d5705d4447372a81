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
gave. An entry stored without a capture is recomputed the first time a capture is needed. Exiting
the block removes the patch. Prefill timings must never run inside it (`vtr.experiments.speedup`
and `vtr bench` do not).
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
    for name, v in [("", a) for a in args] + sorted(kwargs.items(), key=lambda kv: kv[0]):
        h.update(name.encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().contiguous().cpu()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(v).encode())
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

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self._memo: OrderedDict[str, object] = OrderedDict()
        self._bytes = 0
        self._model_id: int | None = None
        self.hits = self.misses = 0

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
        try:
            yield self
        finally:
            del owner.get_image_features

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
        slim, capture = entry
        return _nbytes(slim.pooler_output) + (_nbytes(list(capture.values())) if capture else 0)
