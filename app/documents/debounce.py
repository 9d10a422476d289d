"""Per-document debouncer (Hocuspocus's debounce and maxDebounce): compaction is requested a
debounce after the last edit, and at the latest a maximum after the first edit of a burst."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Debouncer:
    def __init__(self, run: Callable[[str], Awaitable[None]], *, debounce_s: float, max_s: float) -> None:
        self._run = run
        self._debounce_s = debounce_s
        self._max_s = max_s
        self._first: dict[str, float] = {}  # key -> loop time of the burst's first touch
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def touch(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._first.setdefault(key, now)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        when = min(now + self._debounce_s, first + self._max_s)
        self._timers[key] = loop.call_at(when, self._fire, key)

    def pending(self) -> list[str]:
        return list(self._timers)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self._first.pop(key, None)
        task = asyncio.ensure_future(self._call(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, key: str) -> None:
        try:
            await self._run(key)
        except Exception:
            log.exception("debounced call for %s failed", key)

    async def flush(self) -> None:
        """Run every pending call now (at shutdown: nothing waits for a timer that won't fire)."""
        for key in list(self._timers):
            self._timers.pop(key).cancel()
            self._first.pop(key, None)
            await self._call(key)
        for task in list(self._tasks):
            await task
