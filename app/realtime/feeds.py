"""This process's feeds of one kind, one per room (or document): started by the first local user
(one hub subscription for all of them) and stopped after the last, at once or, with a grace
period, that long after (so a reconnecting client does not restart it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Feed(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


F = TypeVar("F", bound=Feed)


class _Slot(Generic[F]):
    __slots__ = ("feed", "ready", "refs", "unload")

    def __init__(self, feed: F) -> None:
        self.feed = feed
        self.refs = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unload: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self.ready.done() and self.ready.exception() is None


class Feeds(Generic[F]):
    def __init__(self, factory: Callable[[str], F], *, grace_s: float = 0.0) -> None:
        self._factory = factory
        self._grace_s = grace_s
        self._slots: dict[str, _Slot[F]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def get(self, key: str) -> F | None:
        slot = self._slots.get(key)
        return slot.feed if slot is not None and slot.running else None

    def all(self) -> list[F]:
        return [slot.feed for slot in self._slots.values() if slot.running]

    def keys(self) -> list[str]:
        return [key for key, slot in self._slots.items() if slot.running]

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
        if slot.unload is not None:
            slot.unload.cancel()
            slot.unload = None
        try:
            await asyncio.shield(slot.ready)
        except BaseException:
            slot.refs -= 1
            raise
        return slot.feed

    async def release(self, key: str, feed: F | None = None) -> None:
        """One user fewer. `feed`: the one it acquired (if it was discarded since, nothing to do)."""
        slot = self._slots.get(key)
        if slot is None or (feed is not None and slot.feed is not feed):
            return
        slot.refs -= 1
        if slot.refs > 0:
            return
        if self._grace_s > 0:
            if slot.unload is None:
                slot.unload = asyncio.get_running_loop().call_later(self._grace_s, self._expire, key, slot)
            return
        del self._slots[key]
        await slot.feed.stop()

    def _expire(self, key: str, slot: _Slot[F]) -> None:
        slot.unload = None
        if self._slots.get(key) is slot and slot.refs <= 0:
            self.discard(key)

    def discard(self, key: str) -> _Slot[F] | None:
        """Forget the feed now, whoever uses it, and stop it in the background."""
        slot = self._slots.pop(key, None)
        if slot is None:
            return None
        if slot.unload is not None:
            slot.unload.cancel()
        if slot.running:
            task = asyncio.ensure_future(slot.feed.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        return slot

    async def stop(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.unload is not None:
                slot.unload.cancel()
            if slot.running:
                await slot.feed.stop()
        for task in list(self._stopping):
            await task
