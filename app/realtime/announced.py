"""Per-process caches that every process empties at once when the cached thing changes.

`TTLCache` holds values for a few seconds, bounded in size. `Announcements` carries "object X
changed" over one hub channel: the process that changed X calls `announce(X)` after its commit,
and every process (itself included) runs its `on_change(X)`; after a transport reconnect, when
announcements may have been lost, `on_change(None)` means "forget everything".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC

K = TypeVar("K")
V = TypeVar("V")

MISSING = object()


class TTLCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | object:
        """The value, or MISSING (absent or expired)."""
        found = self._entries.get(key)
        if found is None:
            return MISSING
        if found[1] <= time.monotonic():
            del self._entries[key]
            return MISSING
        return found[0]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[key] = (value, time.monotonic() + self._ttl_s)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def items(self) -> Iterator[tuple[K, V]]:
        for key, (value, _) in list(self._entries.items()):
            yield key, value


class Announcements:
    def __init__(self, hub: Hub | None, channel: str, on_change: Callable[[uuid.UUID | None], None]) -> None:
        self._hub = hub
        self._channel = channel
        self._on_change = on_change
        self._origin = uuid.uuid4().hex  # our own announcements come back through the hub: skip them

    async def start(self) -> None:
        if self._hub is not None:
            await self._hub.listen(self._channel, self._on_message)

    async def stop(self) -> None:
        if self._hub is not None:
            await self._hub.unlisten(self._channel, self._on_message)

    async def announce(self, object_id: uuid.UUID) -> None:
        """Call after the change is committed."""
        self._on_change(object_id)  # here at once; the hub brings it to the others
        if self._hub is not None:
            await self._hub.publish(self._channel, f"{self._origin} {object_id}")

    def _on_message(self, message: str) -> None:
        if message == RESYNC:
            self._on_change(None)
            return
        origin, _, raw_id = message.partition(" ")
        if origin == self._origin:
            return
        try:
            object_id = uuid.UUID(raw_id)
        except ValueError:
            return
        self._on_change(object_id)
