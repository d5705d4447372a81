"""A least-recently-used memo bounded by the bytes of its tensors: the two memos of a `FeatureCache`
(`vtr.engine.memo`) are instances of it."""
from __future__ import annotations

from collections import OrderedDict

import torch


def nbytes(x) -> int:
    """Bytes held by the tensors in `x` (a tensor, or lists / tuples / dicts of them)."""
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, dict):
        return nbytes(list(x.values()))
    if isinstance(x, (list, tuple)):
        return sum(nbytes(v) for v in x)
    return 0


class LRU:
    """Entries by key, at most `max_bytes` of them (measured by `size(entry)`); the least recently
    used go first, and an entry larger than the whole budget is not kept.

    With `second_sight`, `offer` keeps an entry only from the second time its key is offered, so
    one-off keys do not flush the entries that recur (the keys seen once are remembered up to
    `SEEN_LIMIT`, then forgotten at once)."""

    SEEN_LIMIT = 1 << 20

    def __init__(self, max_bytes: int, size, second_sight: bool = False):
        self.max_bytes, self._size, self._second_sight = max_bytes, size, second_sight
        self._entries: OrderedDict[str, object] = OrderedDict()
        self._seen: set[str] = set()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str):
        """The entry (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry) -> None:
        """Keep `entry` under `key` (replacing what was there), evicting the least recently used."""
        if key in self._entries:
            self.nbytes -= self._size(self._entries.pop(key))
        size = self._size(entry)
        if size > self.max_bytes:
            return
        self._entries[key] = entry
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= self._size(old)

    def offer(self, key: str, entry) -> None:
        """`put`, or with `second_sight` only when `key` was offered before."""
        if not self._second_sight or key in self._seen:
            self.put(key, entry)
            return
        if len(self._seen) >= self.SEEN_LIMIT:
            self._seen.clear()
        self._seen.add(key)
