"""A WebSocket connection lives no longer than the credential it was opened with.

graphql-transport-ws checks credentials once, at connection_init, so each connection is watched
until it ends. When its token or key expires, it is closed with 4403. When its API key is
revoked or rotated, every connection on that key is closed the same way, in every process: the
key cache's announcement reaches them all. graphql-ws clients retry after 4403 and call their
`connectionParams` again, so an SDK that mints tokens lazily reconnects with a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from app.auth.principal import Principal

log = logging.getLogger(__name__)

CLOSE_CODE = 4403
Close = Callable[[int, str], Awaitable[None]]
# The ids, among those given, of keys that are still active and unexpired.
ActiveKeys = Callable[[Iterable[uuid.UUID]], Awaitable[set[uuid.UUID]]]


class Watched:
    __slots__ = ("close", "key_id", "timer")

    def __init__(self, key_id: uuid.UUID | None, close: Close) -> None:
        self.key_id = key_id
        self.close = close
        self.timer: asyncio.TimerHandle | None = None


class CredentialWatch:
    def __init__(self, active_keys: ActiveKeys) -> None:
        self._active_keys = active_keys
        self._by_key: dict[uuid.UUID, set[Watched]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, principal: Principal, close: Close) -> Watched:
        watched = Watched(getattr(principal, "api_key_id", None), close)
        if watched.key_id is not None:
            self._by_key.setdefault(watched.key_id, set()).add(watched)
        expires_at = getattr(principal, "expires_at", None)
        if expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, expires_at - time.time())
            watched.timer = loop.call_at(loop.time() + delay, self._end, watched, "credentials expired")
        return watched

    def forget(self, watched: Watched) -> None:
        if watched.timer is not None:
            watched.timer.cancel()
            watched.timer = None
        if watched.key_id is not None:
            on_key = self._by_key.get(watched.key_id)
            if on_key is not None:
                on_key.discard(watched)
                if not on_key:
                    del self._by_key[watched.key_id]

    def key_changed(self, key_id: uuid.UUID | None) -> None:
        """A key was revoked or rotated, or (None) announcements may have been lost: recheck."""
        key_ids = list(self._by_key) if key_id is None else [key_id] if key_id in self._by_key else []
        if key_ids:
            self._spawn(self._recheck(key_ids))

    async def _recheck(self, key_ids: list[uuid.UUID]) -> None:
        try:
            active = await self._active_keys(key_ids)
        except Exception:
            log.warning("rechecking %d API keys failed", len(key_ids), exc_info=True)
            return
        for key_id in key_ids:
            if key_id not in active:
                for watched in list(self._by_key.get(key_id, ())):
                    self._end(watched, "API key revoked")

    def _end(self, watched: Watched, reason: str) -> None:
        self.forget(watched)
        self._spawn(self._close(watched, reason))

    async def _close(self, watched: Watched, reason: str) -> None:
        with contextlib.suppress(Exception):  # already closed
            await watched.close(CLOSE_CODE, reason)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for on_key in list(self._by_key.values()):
            for watched in list(on_key):
                self.forget(watched)
