"""Publish/subscribe between API processes, with a designed local fan-out.

Transport: broadcaster's backends (memory in the embedded default, Redis in production, made
resilient to restarts). Each process holds ONE transport subscription per channel and hands every
message to that channel's local listeners: the realtime feeds (one per room and stream, which fan
out to their subscribers' sockets), or bounded mailboxes for consumers that read at their own pace.
A mailbox that falls behind never grows memory: it is emptied and receives RESYNC, upon which its
consumer sends fresh state (or ends). RESYNC also follows a transport reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

from broadcaster._backends.base import BroadcastBackend
from broadcaster._backends.memory import MemoryBackend

from app.realtime.redis_backend import RESYNC, ResilientRedisBackend
from app.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[str], None]

DEFAULT_QUEUE_SIZE: Final = 256


class Subscriber:
    """A bounded mailbox. Messages are strings; RESYNC means "you may have missed messages"."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[str] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.overflows = 0

    def offer(self, message: str) -> None:
        if message == RESYNC or len(self._items) >= self._maxsize:
            if message != RESYNC:
                self.overflows += 1
            # Whatever was queued is superseded by a resync: drop it instead of growing.
            self._items.clear()
            message = RESYNC
        self._items.append(message)
        self._ready.set()

    async def get(self) -> str:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def drain(self) -> list[str]:
        """Everything queued now, without waiting (for per-tick consumers)."""
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        while True:
            yield await self.get()


class Hub:
    def __init__(self, backend: BroadcastBackend, namespace: str, *, kind: str) -> None:
        self._backend = backend
        self._prefix = f"{namespace}:"
        self.backend = kind
        # Only a shared transport reaches other processes; in memory this process is alone.
        self.shared = kind != "memory"
        self._listeners: dict[str, list[Listener]] = {}
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Hub:
        if settings.redis_url:
            backend = ResilientRedisBackend(
                settings.redis_url,
                max_connections=settings.redis_max_connections,
                timeout_s=settings.redis_pool_timeout_s,
            )
            return cls(backend, settings.redis_namespace, kind="redis")
        return cls(MemoryBackend("memory://"), settings.redis_namespace, kind="memory")

    async def start(self) -> None:
        await self._backend.connect()
        self._listener = asyncio.create_task(self._listen(), name="hub-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        try:
            async with asyncio.timeout(10):
                await self._backend.disconnect()
        except TimeoutError:
            log.warning("pub/sub transport did not close within 10 s; abandoned")

    @property
    def available(self) -> bool:
        """Whether messages reach the other processes now (False while Redis is down)."""
        return getattr(self._backend, "connected", True)

    async def publish(self, channel: str, message: str) -> bool:
        """Serialized once by the caller; delivered once to each process subscribed to `channel`.
        False if the transport refused it (down): it is dropped, and subscribers get a RESYNC
        when the transport is back."""
        try:
            await self._backend.publish(self._prefix + channel, message)
        except Exception:
            log.warning("publish to %s failed; dropped", channel, exc_info=True)
            return False
        return True

    async def publish_many(self, channel: str, messages: Sequence[str]) -> bool:
        """`publish` of each message, in order, in one round trip where the transport can (a Redis
        pipeline): a batch costs what one message costs. False if the transport refused them."""
        key = self._prefix + channel
        try:
            if isinstance(self._backend, ResilientRedisBackend):
                await self._backend.publish_many(key, messages)
            else:
                for message in messages:
                    await self._backend.publish(key, message)
        except Exception:
            log.warning("publish of %d messages to %s failed; dropped", len(messages), channel, exc_info=True)
            return False
        return True

    async def listen(self, channel: str, listener: Listener) -> None:
        """Call `listener(message)` for every message on `channel` (and RESYNC), until unlisten.
        Listeners run in the hub's task: they must not block."""
        key = self._prefix + channel
        listeners = self._listeners.get(key)
        if listeners is None:
            listeners = self._listeners[key] = []
            listeners.append(listener)
            await self._backend.subscribe(key)
        else:
            listeners.append(listener)

    async def unlisten(self, channel: str, listener: Listener) -> None:
        key = self._prefix + channel
        listeners = self._listeners.get(key)
        if listeners is None or listener not in listeners:
            return
        listeners.remove(listener)
        if not listeners:
            del self._listeners[key]
            await self._backend.unsubscribe(key)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, *, maxsize: int = DEFAULT_QUEUE_SIZE
    ) -> AsyncIterator[Subscriber]:
        """A bounded mailbox of the channel's messages, for consumers that read at their pace."""
        subscriber = Subscriber(maxsize)
        await self.listen(channel, subscriber.offer)
        try:
            yield subscriber
        finally:
            await self.unlisten(channel, subscriber.offer)

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback` after the transport reconnects (Redis restarted), before subscribers
        are told to resync. The memory transport never reconnects."""
        if isinstance(self._backend, ResilientRedisBackend):
            self._backend.on_reconnect.append(callback)

    def local_subscribers(self, channel: str) -> int:
        return len(self._listeners.get(self._prefix + channel, ()))

    async def _listen(self) -> None:
        while True:
            event = await self._backend.next_published()
            for listener in tuple(self._listeners.get(event.channel, ())):
                try:
                    listener(event.message)
                except Exception:
                    log.exception("a listener of %s failed", event.channel)
