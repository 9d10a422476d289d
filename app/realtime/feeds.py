"""This process's feeds of one kind, one per room: started by the room's first local subscriber
(one hub subscription for all of them) and stopped after its last."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Feed(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


F = TypeVar("F", bound=Feed)


class _Slot(Generic[F]):
    __slots__ = ("feed", "ready", "refs")

    def __init__(self, feed: F) -> None:
        self.feed = feed
        self.refs = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Feeds(Generic[F]):
    def __init__(self, factory: Callable[[str], F]) -> None:
        self._factory = factory
        self._slots: dict[str, _Slot[F]] = {}

    def get(self, key: str) -> F | None:
        slot = self._slots.get(key)
        return slot.feed if slot is not None and slot.ready.done() else None

    def all(self) -> list[F]:
        return [slot.feed for slot in self._slots.values() if slot.ready.done()]

    async def acquire(self, key: str) -> F:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(self._factory(key))
            slot.refs += 1
            try:
                await slot.feed.start()
            except BaseException as error:
                if self._slots.get(key) is slot:
                    del self._slots[key]
                slot.ready.set_exception(error if isinstance(error, Exception) else RuntimeError("cancelled"))
                slot.ready.exception()  # retrieved: waiters re-raise it
                raise
            slot.ready.set_result(None)
            return slot.feed
        slot.refs += 1
        try:
            await asyncio.shield(slot.ready)
        except BaseException:
            slot.refs -= 1
            raise
        return slot.feed

    async def release(self, key: str) -> None:
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.refs -= 1
        if slot.refs <= 0:
            del self._slots[key]
            await slot.feed.stop()

    async def stop(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.ready.done() and slot.ready.exception() is None:
                await slot.feed.stop()
