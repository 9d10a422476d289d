"""An LRU cache bounded by the bytes its entries keep, not by their number.

Caches keyed by query text cannot be bounded by entries: ten thousand one-line operations and
three hundred 900 KB documents are very different memory. Each entry is charged the size its
caller tells (the query text, or an estimate of what the value keeps), plus the cache's own
bookkeeping; an entry larger than `max_entry_bytes` is not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

# What an entry costs besides its key and value: its OrderedDict node, key tuple and size int.
ENTRY_OVERHEAD_BYTES = 200


class ByteLRU(Generic[K, V]):
    def __init__(self, max_bytes: int, *, max_entry_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes if max_entry_bytes is None else min(max_entry_bytes, max_bytes)
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """The bytes charged for the entries held now (never more than `max_bytes`)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K, default: D) -> V | D:
        found = self._entries.get(key)
        if found is None:
            return default
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, size: int) -> bool:
        """Keep `value`, charged `size` bytes, evicting the least recently used entries as needed;
        False (and nothing kept) if it is larger than an entry may be."""
        self.pop(key)
        charge = size + ENTRY_OVERHEAD_BYTES
        if charge > self.max_entry_bytes:
            return False
        self._entries[key] = (value, charge)
        self._bytes += charge
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
        return True

    def pop(self, key: K) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= found[1]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
