"""Publish/subscribe between API processes: in memory (embedded default) or Redis (production).

A thin seam over broadcaster so the rest of the code never names a backend. Messages are strings,
serialized once by the publisher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast

from app.settings import Settings


class Hub:
    def __init__(self, url: str) -> None:
        self.url = url
        self._broadcast = Broadcast(url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Hub:
        return cls(settings.redis_url or "memory://")

    @property
    def backend(self) -> str:
        return "redis" if self.url.startswith(("redis", "rediss", "unix")) else "memory"

    async def start(self) -> None:
        await self._broadcast.connect()

    async def stop(self) -> None:
        await self._broadcast.disconnect()

    async def publish(self, channel: str, message: str) -> None:
        await self._broadcast.publish(channel=channel, message=message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        async with self._broadcast.subscribe(channel=channel) as subscriber:

            async def messages() -> AsyncIterator[str]:
                async for event in subscriber:  # type: ignore[union-attr]
                    yield event.message

            yield messages()
