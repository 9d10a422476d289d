"""broadcaster's Redis backend, made to survive Redis restarts (broadcaster issue #144).

On a lost connection the listener reconnects with capped exponential backoff, subscribes again to
every channel it had, and then emits a RESYNC event on each of them so the hub can tell live
subscriptions that they may have missed messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from broadcaster._backends.redis import RedisBackend
from broadcaster._base import Event
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.realtime.redis_client import redis_client

log = logging.getLogger(__name__)

RESYNC = "\x00resync"
MAX_BACKOFF_S = 5.0


class ResilientRedisBackend(RedisBackend):
    def __init__(self, url: str, *, max_connections: int = 64, timeout_s: float = 10.0) -> None:
        super().__init__(url)
        self._url = url
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        # broadcaster's client has redis-py's default pool, which fails past 100 connections:
        # publishes (one per room per tick, many rooms) wait for a connection instead.
        self._conn = self._client()
        self._pubsub = self._conn.pubsub()
        self._channels: set[str] = set()
        self.reconnects = 0
        self.connected = True  # False from a lost connection until the reconnect succeeds
        # Run after a reconnect, before the RESYNC events (e.g. presence re-registers itself).
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    def _client(self) -> aioredis.Redis:
        return redis_client(
            self._url, max_connections=self._max_connections, timeout_s=self._timeout_s, retry=False
        )

    async def disconnect(self) -> None:
        # Stop the listener before closing what it reads from (broadcaster closes first, and a
        # close can then wait on the listener's read), and never wait forever on a dead server.
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._pubsub.aclose()
                await self._conn.aclose()

    async def publish_many(self, channel: str, messages: Sequence[str]) -> None:
        """Every message in one round trip (a pipeline without MULTI: delivered in order)."""
        if len(messages) == 1:
            await self._conn.publish(channel, messages[0])
            return
        async with self._conn.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(channel, message)
            await pipe.execute()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        try:
            await super().subscribe(channel)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # The listener subscribes again to every channel once Redis is back.
            log.warning("Redis unavailable; %s will be subscribed on reconnect", channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await super().unsubscribe(channel)

    async def _pubsub_listener(self) -> None:
        backoff = 0.1
        while True:
            if not self._channels:
                self._ready.clear()
                await self._ready.wait()
            try:
                # listen() returns at once while the SUBSCRIBE is still in flight (broadcaster's
                # own listener then waits forever); here it is simply entered again.
                async for message in self._pubsub.listen():
                    backoff = 0.1
                    if message["type"] == "message":
                        event = Event(channel=message["channel"].decode(), message=message["data"].decode())
                        await self._queue.put(event)
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected = False
                log.warning("Redis pub/sub connection lost (%s); reconnecting", exc)
                while True:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    if await self._reconnect():
                        break

    async def _reconnect(self) -> bool:
        old_pubsub, old_conn = self._pubsub, self._conn
        with contextlib.suppress(Exception):  # the old connection is gone anyway
            await old_pubsub.aclose()
            await old_conn.aclose()
        self._conn = self._client()
        self._pubsub = self._conn.pubsub()
        try:
            channels = sorted(self._channels)
            if channels:
                await self._pubsub.subscribe(*channels)
            else:
                await self._conn.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False  # still down: back off and try again
        self.reconnects += 1
        self.connected = True
        log.info("Redis pub/sub reconnected; resubscribed to %d channels", len(channels))
        for callback in self.on_reconnect:
            # Other clients' pooled connections may still point at the old server: retry a bit.
            for attempt in range(5):
                try:
                    await callback()
                    break
                except Exception:
                    if attempt == 4:
                        log.exception("reconnect callback failed")
                    await asyncio.sleep(0.2)
        for channel in channels:
            await self._queue.put(Event(channel=channel, message=RESYNC))
        return True
