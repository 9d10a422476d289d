"""This process's feeds of one kind, one per room (or document): started by the first local user
(one hub subscription for all of them) and stopped after the last, at once or, with a grace
period, that long after (so a reconnecting client does not restart it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from app.realtime.single_flight import join, spawn


class Feed(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


F = TypeVar("F", bound=Feed)


class _Slot(Generic[F]):
    __slots__ = ("feed", "refs", "started", "unload")

    def __init__(self, feed: F) -> None:
        self.feed = feed
        self.refs = 0
        self.started: asyncio.Task[None] | None = None
        self.unload: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        started = self.started
        return (
            started is not None and started.done() and not started.cancelled() and started.exception() is None
        )


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
            # Started in a task of its own: an acquirer cancelled meanwhile does not fail the others.
            slot = self._slots[key] = _Slot(self._factory(key))
            slot.started = spawn(slot.feed.start)
            slot.started.add_done_callback(lambda _: self._started(key, slot))
        assert slot.started is not None
        slot.refs += 1
        if slot.unload is not None:
            slot.unload.cancel()
            slot.unload = None
        try:
            await join(slot.started)
        except BaseException:
            slot.refs -= 1
            if slot.refs <= 0 and slot.running:  # cancelled as the start completed: it was the last user
                self._let_go(key, slot)
            raise
        return slot.feed

    def _started(self, key: str, slot: _Slot[F]) -> None:
        current = self._slots.get(key) is slot
        if not slot.running:  # failed: forgotten before its waiters see why, so a retry starts anew
            if current:
                del self._slots[key]
        elif not current:  # discarded (or all stopped) while it started
            self._stop_later(slot.feed)
        elif slot.refs <= 0:  # every acquirer was cancelled while it started
            self._let_go(key, slot)

    def _let_go(self, key: str, slot: _Slot[F]) -> None:
        """No user left: unload the feed after the grace period, or now (stopped in the background)."""
        if self._slots.get(key) is not slot:
            return
        if self._grace_s > 0:
            if slot.unload is None:
                slot.unload = asyncio.get_running_loop().call_later(self._grace_s, self._expire, key, slot)
        else:
            self.discard(key)

    async def release(self, key: str, feed: F | None = None) -> None:
        """One user fewer. `feed`: the one it acquired (if it was discarded since, nothing to do)."""
        slot = self._slots.get(key)
        if slot is None or (feed is not None and slot.feed is not feed):
            return
        slot.refs -= 1
        if slot.refs > 0:
            return
        if self._grace_s > 0:
            self._let_go(key, slot)
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
            self._stop_later(slot.feed)
        return slot

    def _stop_later(self, feed: F) -> None:
        task = asyncio.ensure_future(feed.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.unload is not None:
                slot.unload.cancel()
            if slot.running:
                await slot.feed.stop()
        for task in list(self._stopping):
            await task
