"""Server pings (graphql-transport-ws `ping`; clients answer `pong`), from one loop for all sockets.

A live but quiet connection then shows activity, and a vanished one stops showing it: presence
removes it after its room's TTL, and a connection silent for three intervals (clients must answer
every ping) is closed. One task walks every connection each half second instead of one timer task
per connection: thousands of idle sockets cost a dict entry each, not a task. (uvicorn's own
protocol-level pings are therefore turned off.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.realtime.outbox import Outbox

log = logging.getLogger(__name__)

PING = '{"type":"ping"}'
RESOLUTION_S = 0.5
SILENT_INTERVALS = 3
CLOSE_SILENT = 4000  # private use: "keepalive timeout"


class KeepAlive:
    __slots__ = ("activity", "close", "interval_s", "last_ping", "outbox")

    def __init__(
        self,
        outbox: Outbox,
        interval_s: float,
        activity: Any,
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.outbox = outbox
        self.interval_s = interval_s
        self.activity = activity  # its `last_activity`: wall clock of the client's last message
        self.close = close
        self.last_ping = time.monotonic()

    def at_most(self, interval_s: float) -> None:
        """Ping at least this often (a room with a short presence TTL asks for it)."""
        self.interval_s = min(self.interval_s, max(RESOLUTION_S, interval_s))


class Pinger:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._connections: dict[KeepAlive, None] = {}
        self._task: asyncio.Task[None] | None = None

    def add(
        self,
        outbox: Outbox,
        activity: Any,
        close: Callable[[int, str], Awaitable[None]],
    ) -> KeepAlive:
        keepalive = KeepAlive(outbox, self.interval_s, activity, close)
        self._connections[keepalive] = None
        return keepalive

    def remove(self, keepalive: KeepAlive) -> None:
        self._connections.pop(keepalive, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ws-pinger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(RESOLUTION_S)
            now, wall = time.monotonic(), time.time()
            for keepalive in list(self._connections):
                try:
                    self._visit(keepalive, now, wall)
                except Exception:
                    log.warning("keepalive failed", exc_info=True)

    def _visit(self, keepalive: KeepAlive, now: float, wall: float) -> None:
        silence = wall - keepalive.activity.last_activity
        if silence > SILENT_INTERVALS * keepalive.interval_s:
            del self._connections[keepalive]
            log.info("closing a connection silent for %.0f s", silence)
            task = asyncio.ensure_future(keepalive.close(CLOSE_SILENT, "keepalive timeout"))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        if now - keepalive.last_ping >= keepalive.interval_s and not keepalive.outbox.blocked:
            keepalive.last_ping = now
            keepalive.outbox.push(PING)
