"""The documents loaded in this process: loaded by their first user (a subscriber, a sync, an
update), kept while anyone uses them, and unloaded a grace period after the last one left, so a
reconnecting client or a burst of reads does not reload the document each time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from app.documents.replica import DocumentReplica
from app.realtime.feeds import Feeds


class Replicas(Feeds[DocumentReplica]):
    def __init__(self, factory: Callable[[str], DocumentReplica], *, grace_s: float) -> None:
        super().__init__(factory, grace_s=grace_s)

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
