"""The documents loaded in this process: loaded by their first user (a subscriber, a sync, an
update), kept while anyone uses them, and unloaded a grace period after the last one left, so a
reconnecting client or a burst of reads does not reload the document each time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from app.documents.replica import DocumentReplica
from app.errors import NotFound
from app.realtime.feeds import Feeds

log = logging.getLogger(__name__)

# The ids, among those given, of documents that exist and are not in the trash.
StillActive = Callable[[Iterable[uuid.UUID]], Awaitable[set[uuid.UUID]]]


class Replicas(Feeds[DocumentReplica]):
    def __init__(
        self, factory: Callable[[str], DocumentReplica], *, grace_s: float, still_active: StillActive
    ) -> None:
        super().__init__(factory, grace_s=grace_s)
        self._still_active = still_active
        self._checks: set[asyncio.Task[None]] = set()

    def changed(self, document_id: uuid.UUID | None) -> None:
        """A document was trashed or restored somewhere (None: after a transport reconnect,
        announcements may have been lost): unload the copies of those no longer active."""
        keys = [str(document_id)] if document_id is not None else self.keys()
        if document_id is not None and self.get(str(document_id)) is None:
            return
        if keys:
            task = asyncio.ensure_future(self._recheck(keys))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _recheck(self, keys: list[str]) -> None:
        try:
            active = await self._still_active([uuid.UUID(key) for key in keys])
        except Exception:
            log.warning("rechecking %d documents failed", len(keys), exc_info=True)
            return
        for key in keys:
            if uuid.UUID(key) not in active:
                self.evict(key, NotFound("document"))

    @asynccontextmanager
    async def use(self, document_id: str) -> AsyncIterator[DocumentReplica]:
        replica = await self.acquire(document_id)
        try:
            yield replica
        finally:
            await self.release(document_id, replica)

    def in_room(self, room_id: str) -> list[DocumentReplica]:
        return [replica for replica in self.all() if replica.room_id == room_id]

    def evict(self, document_id: str, error: Exception) -> None:
        """Unload now (the document was trashed or deleted): its subscriptions end with `error`."""
        replica = self.get(document_id)
        if replica is not None:
            replica.fail_streams(error)
            self.discard(document_id)
