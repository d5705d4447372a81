"""Peak memory of a block of tensor work, measured, on any device.

On CUDA: `torch.cuda.max_memory_allocated` over the block (reset at its start), minus what was
allocated when it began. On CPU, where torch keeps no allocator statistics, a dispatch mode sees
every op's output: the peak is the largest total size of tensor storages created inside the block
and alive at the same time (a storage is counted once however many views share it, and freed when
its first tensor is collected). Buffers private to a kernel (e.g. inside SDPA) are not seen, on
CPU only; weights and inputs created before the block are not counted on either device.
"""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _LiveBytes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._keys: set[int] = set()

    def _free(self, key: int, n: int) -> None:
        self.live -= n
        self._keys.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {x.untyped_storage().data_ptr() for x in tree_leaves((args, kwargs))
                  if isinstance(x, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key, n = storage.data_ptr(), storage.nbytes()
                # a view or an in-place result: no new memory
                if n == 0 or key in self._keys or key in inputs:
                    continue
                self._keys.add(key)
                self.live += n
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, key, n)
        return out


class PeakMemory:
    """`with PeakMemory(device) as m: ...` then `m.peak_bytes`. Slows CPU work: never time inside."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._mode = _LiveBytes().__enter__()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._start
        else:
            self._mode.__exit__(*exc)
            self.peak_bytes = self._mode.peak
        return False
