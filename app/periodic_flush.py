"""Buffers written by a background task every `interval_s`, and once more at shutdown."""

from __future__ import annotations

import asyncio
import contextlib


class PeriodicFlush:
    """Subclasses implement `flush()`; `start()` and `stop()` are called by the app's lifespan."""

    def __init__(self, interval_s: float, name: str) -> None:
        self._interval_s = interval_s
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()
