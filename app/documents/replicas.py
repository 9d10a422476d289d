"""The documents loaded in this process: loaded by their first user (a subscriber, a sync, an
update), kept while anyone uses them, and unloaded a grace period after the last one left, so a
reconnecting client or a burst of reads does not reload the document each time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from app.documents.replica import DocumentReplica

log = logging.getLogger(__name__)


class _Slot:
    __slots__ = ("ready", "refs", "replica", "unload")

    def __init__(self, replica: DocumentReplica) -> None:
        self.replica = replica
        self.refs = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unload: asyncio.TimerHandle | None = None


class Replicas:
    def __init__(self, factory: Callable[[str], DocumentReplica], *, grace_s: float) -> None:
        self._factory = factory
        self._grace_s = grace_s
        self._slots: dict[str, _Slot] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def get(self, document_id: str) -> DocumentReplica | None:
        slot = self._slots.get(document_id)
        return slot.replica if slot is not None and slot.ready.done() and not slot.ready.exception() else None

    def in_room(self, room_id: str) -> list[DocumentReplica]:
        return [
            slot.replica
            for slot in self._slots.values()
            if slot.ready.done() and not slot.ready.exception() and slot.replica.room_id == room_id
        ]

    def loaded(self) -> list[str]:
        return [key for key, slot in self._slots.items() if slot.ready.done()]

    async def acquire(self, document_id: str) -> DocumentReplica:
        slot = self._slots.get(document_id)
        if slot is None:
            slot = self._slots[document_id] = _Slot(self._factory(document_id))
            slot.refs += 1
            try:
                await slot.replica.start()
            except BaseException as error:
                if self._slots.get(document_id) is slot:
                    del self._slots[document_id]
                slot.ready.set_exception(error if isinstance(error, Exception) else RuntimeError("cancelled"))
                slot.ready.exception()  # retrieved: waiters re-raise it
                raise
            slot.ready.set_result(None)
            return slot.replica
        slot.refs += 1
        if slot.unload is not None:
            slot.unload.cancel()
            slot.unload = None
        try:
            await asyncio.shield(slot.ready)
        except BaseException:
            slot.refs -= 1
            raise
        return slot.replica

    def release(self, document_id: str) -> None:
        slot = self._slots.get(document_id)
        if slot is None:
            return
        slot.refs -= 1
        if slot.refs <= 0 and slot.unload is None:
            slot.unload = asyncio.get_running_loop().call_later(
                self._grace_s, self._unload, document_id, slot
            )

    @asynccontextmanager
    async def use(self, document_id: str) -> AsyncIterator[DocumentReplica]:
        replica = await self.acquire(document_id)
        try:
            yield replica
        finally:
            self.release(document_id)

    def evict(self, document_id: str, error: Exception) -> None:
        """Unload now (the document was trashed or deleted): its subscriptions end with `error`."""
        slot = self._slots.get(document_id)
        if slot is not None and slot.ready.done():
            self._unload(document_id, slot, error)

    def _unload(self, document_id: str, slot: _Slot, error: Exception | None = None) -> None:
        slot.unload = None
        if self._slots.get(document_id) is not slot or (slot.refs > 0 and error is None):
            return
        del self._slots[document_id]
        task = asyncio.ensure_future(slot.replica.stop(error))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.unload is not None:
                slot.unload.cancel()
            if slot.ready.done() and slot.ready.exception() is None:
                await slot.replica.stop()
        for task in list(self._stopping):
            await task
