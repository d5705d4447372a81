"""Reusing the image encoder's output across evaluations of decoder-side policies.

A policy without an encoder step only removes tokens inside the decoder, so the vision tower and
projector compute exactly the same features for an image whatever the plan. A search scores tens
of plans on the same validation images, and the methods table runs many decoder-side methods on the
same test images: encoding each image batch once saves about half of the testbed's compute (its
vision tower costs about as much as its decoder).

`FeatureCache.attached(model)` patches one thing: the instance attribute `get_image_features` of
the module that owns it (`model.model` for every supported family), with a memo keyed by the
digest of the call's tensors (pixel values, image sizes / grid). The memo keeps only the
projected features (`pooler_output`); the vision tower's hidden states are dropped, so a caller
that needs them (an encoder-side method) gets an error rather than stale values. Exiting the
block removes the patch. Prefill timings must never run inside it (`vtr.experiments.speedup` and
`vtr bench` do not).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import OrderedDict

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling


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
            key = _digest(args, kwargs)
            if key in self._memo:
                self.hits += 1
                self._memo.move_to_end(key)
                return self._memo[key]
            self.misses += 1
            out = original(*args, **kwargs)
            slim = BaseModelOutputWithPooling(pooler_output=out.pooler_output)
            self._store(key, slim)
            return slim

        owner.get_image_features = memo
        try:
            yield self
        finally:
            del owner.get_image_features

    def _store(self, key: str, value) -> None:
        size = _nbytes(value.pooler_output)
        if size > self.max_bytes:
            return
        self._memo[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._memo.popitem(last=False)
            self._bytes -= _nbytes(old.pooler_output)
