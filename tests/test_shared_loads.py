"""Loads shared by concurrent callers (app/realtime/single_flight.py): a caller that is cancelled
only stops waiting, the load completes for the others, and a failing load fails every caller with
its own exception. The room cache's read and a feed's start are such loads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.realtime.feeds import Feeds
from app.rooms.cache import RoomCache, RoomSnapshot
from tests import factories

CALLERS = 40


class Gate:
    """Holds a load at its start until opened; counts the loads that came."""

    def __init__(self, error: Exception | None = None) -> None:
        self.loads = 0
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.error = error

    async def passage(self) -> None:
        self.loads += 1
        self.entered.set()
        await self.opened.wait()
        if self.error is not None:
            raise self.error


def gated(session_factory: async_sessionmaker[AsyncSession], gate: Gate) -> async_sessionmaker[AsyncSession]:
    """The same database, through sessions whose reads wait at the gate."""

    class GatedSession(AsyncSession):
        async def get(self, *args: Any, **kwargs: Any) -> Any:
            await gate.passage()
            return await super().get(*args, **kwargs)

    return async_sessionmaker(session_factory.kw["bind"], class_=GatedSession, expire_on_commit=False)


async def _room_cache(app: Starlette, session_factory, gate: Gate) -> tuple[RoomCache, Any]:  # type: ignore[no-untyped-def]
    org = factories.organization()
    room = factories.room(org)
    await factories.add(session_factory, org)
    await factories.add(session_factory, room)
    return RoomCache(gated(session_factory, gate), app.state.syncforge.hub, ttl_s=60), room


async def test_a_cancelled_first_reader_does_not_fail_the_others(app: Starlette, session_factory) -> None:  # type: ignore[no-untyped-def]
    gate = Gate()
    cache, room = await _room_cache(app, session_factory, gate)
    first = asyncio.create_task(cache.get(room.id))
    await gate.entered.wait()  # the first caller is reading
    others = [asyncio.create_task(cache.get(room.id)) for _ in range(CALLERS)]
    await asyncio.sleep(0)  # all of them wait for that read
    first.cancel()
    await asyncio.sleep(0)
    gate.opened.set()
    snapshots = await asyncio.gather(*others)
    assert all(isinstance(s, RoomSnapshot) and s.id == room.id for s in snapshots)
    assert first.cancelled()
    assert gate.loads == 1
    assert (await cache.get(room.id)) == snapshots[0] and gate.loads == 1  # and it was cached


async def test_a_failing_read_reaches_every_reader(app: Starlette, session_factory) -> None:  # type: ignore[no-untyped-def]
    gate = Gate(error=ConnectionResetError("the database went away"))
    cache, room = await _room_cache(app, session_factory, gate)
    callers = [asyncio.create_task(cache.get(room.id)) for _ in range(CALLERS)]
    await gate.entered.wait()
    gate.opened.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(outcome is gate.error for outcome in outcomes), outcomes
    assert gate.loads == 1
    gate.error = None  # nothing failed was kept: the next caller reads again
    assert (await cache.get(room.id)).id == room.id and gate.loads == 2  # type: ignore[union-attr]


class SlowFeed:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.started = self.stopped = 0

    async def start(self) -> None:
        await self.gate.passage()
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1


@pytest.mark.parametrize("grace_s", [0.0, 0.01])
async def test_a_cancelled_first_acquirer_does_not_fail_the_others(grace_s: float) -> None:
    gate = Gate()
    made: list[SlowFeed] = []

    def make(key: str) -> SlowFeed:
        made.append(SlowFeed(gate))
        return made[-1]

    feeds: Feeds[SlowFeed] = Feeds(make, grace_s=grace_s)
    first = asyncio.create_task(feeds.acquire("room"))
    await gate.entered.wait()
    others = [asyncio.create_task(feeds.acquire("room")) for _ in range(CALLERS)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.opened.set()
    acquired = await asyncio.gather(*others)
    assert first.cancelled()
    assert len(made) == 1 and all(feed is made[0] for feed in acquired) and made[0].started == 1
    # The cancelled acquirer gave its reference back: the feed stops when the real users leave.
    for feed in acquired[:-1]:
        await feeds.release("room", feed)
    assert feeds.get("room") is made[0] and made[0].stopped == 0
    await feeds.release("room", acquired[-1])
    await _until(lambda: made[0].stopped == 1)
    assert feeds.get("room") is None


async def test_a_feed_whose_only_acquirer_was_cancelled_is_stopped_once_started() -> None:
    gate = Gate()
    feed = SlowFeed(gate)
    feeds: Feeds[SlowFeed] = Feeds(lambda key: feed)
    only = asyncio.create_task(feeds.acquire("room"))
    await gate.entered.wait()
    only.cancel()
    await asyncio.sleep(0)
    gate.opened.set()
    await _until(lambda: feed.stopped == 1)
    assert feed.started == 1 and feeds.get("room") is None and feeds.keys() == []


async def test_a_failing_start_reaches_every_acquirer() -> None:
    gate = Gate(error=ConnectionResetError("the hub went away"))
    feeds: Feeds[SlowFeed] = Feeds(lambda key: SlowFeed(gate))
    callers = [asyncio.create_task(feeds.acquire("room")) for _ in range(CALLERS)]
    await gate.entered.wait()
    gate.opened.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(outcome is gate.error for outcome in outcomes), outcomes
    assert gate.loads == 1 and feeds.keys() == []
    gate.error = None  # the failed feed was forgotten: the next acquirer starts a new one
    assert (await feeds.acquire("room")).started == 1 and gate.loads == 2


async def _until(condition: Any, polls: int = 1000) -> None:
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")
