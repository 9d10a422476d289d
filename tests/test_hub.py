"""The hub carries a message from one process's publish to every subscriber, on both backends."""

from __future__ import annotations

import asyncio
import uuid

from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC
from app.settings import Settings


async def _receive(messages, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    received = []
    async for message in messages:
        received.append(message)
        if len(received) == count:
            return received
    return received


async def test_publish_reaches_subscribers_of_that_channel_only(settings: Settings) -> None:
    # Two hubs stand for two API processes; on the postgres backend they meet through Redis.
    publisher, listener = Hub.from_settings(settings), Hub.from_settings(settings)
    if settings.redis_url is None:
        listener = publisher  # the memory backend is one process by definition
    await publisher.start()
    if listener is not publisher:
        await listener.start()
    channel, other = f"room:{uuid.uuid4()}", f"room:{uuid.uuid4()}"
    try:
        async with (
            listener.subscribe(channel) as first,
            listener.subscribe(channel) as second,
            listener.subscribe(other) as unrelated,
        ):
            await asyncio.sleep(0.1)  # let the Redis SUBSCRIBE land before publishing
            await publisher.publish(channel, "hello")
            await publisher.publish(channel, "world")
            got_first, got_second = await asyncio.wait_for(
                asyncio.gather(_receive(first, 2), _receive(second, 2)), 5
            )
            assert got_first == got_second == ["hello", "world"]
            stray = asyncio.ensure_future(_receive(unrelated, 1))
            await asyncio.sleep(0.2)
            assert not stray.done()
            stray.cancel()
    finally:
        await publisher.stop()
        if listener is not publisher:
            await listener.stop()
    assert publisher.backend == ("redis" if settings.redis_url else "memory")


async def test_a_slow_subscriber_is_bounded_and_told_to_resync(settings: Settings) -> None:
    hub = Hub.from_settings(settings)
    await hub.start()
    try:
        async with hub.subscribe("room:slow", maxsize=5) as slow, hub.subscribe("room:slow") as fast:
            await asyncio.sleep(0.1)
            for i in range(50):
                await hub.publish("room:slow", str(i))
            received = [await asyncio.wait_for(fast.get(), 5) for _ in range(50)]
            assert received == [str(i) for i in range(50)]  # the fast one is not held back
            # The slow one never held more than 5: it got RESYNC and whatever came after it.
            pending = slow.drain()
            assert len(pending) <= 5 and RESYNC in pending and slow.overflows > 0
    finally:
        await hub.stop()
