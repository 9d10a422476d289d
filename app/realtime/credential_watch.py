"""A WebSocket connection lives no longer than the credential it was opened with, and holds no
more rights than that credential has now.

graphql-transport-ws checks credentials once, at connection_init, so each connection is watched
until it ends:
- when its token or key expires, it is closed with 4403;
- when its API key is revoked or rotated, every connection on that key is closed the same way,
  in every process (the key cache's announcement reaches them all); graphql-ws clients retry
  after 4403 and call their `connectionParams` again, so an SDK that mints tokens lazily
  reconnects with a fresh one;
- when its key's scopes, origins or rate limit change, the connection takes the key's new
  settings (or is closed if its origin is no longer allowed), and its streams are authorized
  again (see app/realtime/access_epoch.py);
- when a developer's memberships change, that developer's connections' streams are authorized
  again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from app.accounts.api_keys import origin_allowed
from app.auth.key_cache import KeySnapshot
from app.auth.principal import Developer
from app.realtime.access_epoch import AccessEpoch, recheck_streams

log = logging.getLogger(__name__)

CLOSE_CODE = 4403
Close = Callable[[int, str], Awaitable[None]]
# The keys, among the ids given, that are still active and unexpired, as they are now.
CurrentKeys = Callable[[Iterable[uuid.UUID]], Awaitable[dict[uuid.UUID, KeySnapshot]]]


class Watched:
    """One connection: its context (principal, streams) and how to close it."""

    __slots__ = ("close", "context", "key_id", "origin", "timer", "user_id")

    def __init__(self, context: Any, close: Close, origin: str | None) -> None:
        principal = context.principal
        self.context = context
        self.close = close
        self.origin = origin
        self.key_id: uuid.UUID | None = getattr(principal, "api_key_id", None)
        self.user_id = principal.user_id if isinstance(principal, Developer) else None
        self.timer: asyncio.TimerHandle | None = None


class CredentialWatch:
    def __init__(self, current_keys: CurrentKeys, epoch: AccessEpoch) -> None:
        self._current_keys = current_keys
        self._epoch = epoch
        self._by_key: dict[uuid.UUID, set[Watched]] = {}
        self._by_user: dict[uuid.UUID, set[Watched]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Per key, how many rechecks were started: a read that a later one overtook is not
        # applied (a key widened then narrowed must end narrowed, whichever read returns last).
        self._rechecks: dict[uuid.UUID, int] = {}

    def watch(self, context: Any, close: Close, origin: str | None = None) -> Watched:
        watched = Watched(context, close, origin)
        if watched.key_id is not None:
            self._by_key.setdefault(watched.key_id, set()).add(watched)
        if watched.user_id is not None:
            self._by_user.setdefault(watched.user_id, set()).add(watched)
        self._expire_at(watched, getattr(context.principal, "expires_at", None))
        return watched

    def forget(self, watched: Watched) -> None:
        """The connection ended (or is being closed)."""
        if watched.timer is not None:
            watched.timer.cancel()
            watched.timer = None
        for index, key in ((self._by_key, watched.key_id), (self._by_user, watched.user_id)):
            if key is not None:
                entries = index.get(key)
                if entries is not None:
                    entries.discard(watched)
                    if not entries:
                        del index[key]

    def key_changed(self, key_id: uuid.UUID | None) -> None:
        """A key was revoked, rotated or changed, or (None) announcements may have been lost."""
        key_ids = list(self._by_key) if key_id is None else [key_id] if key_id in self._by_key else []
        if key_ids:
            started = {}
            for key in key_ids:
                started[key] = self._rechecks[key] = self._rechecks.get(key, 0) + 1
            self._spawn(self._recheck_keys(started))

    def member_changed(self, user_id: uuid.UUID | None) -> None:
        """A developer's membership changed (None: announcements may have been lost): memoized
        authorizations are asked again, and that developer's streams are rechecked."""
        self._epoch.bump()
        users = list(self._by_user) if user_id is None else [user_id] if user_id in self._by_user else []
        watched = [w for user in users for w in self._by_user.get(user, ())]
        if watched:
            self._spawn(recheck_streams(s for w in watched for s in list(w.context.streams.values())))

    async def _recheck_keys(self, started: dict[uuid.UUID, int]) -> None:
        try:
            current = await self._current_keys(list(started))
        except Exception:
            log.warning("rechecking %d API keys failed", len(started), exc_info=True)
            return
        changed: list[Watched] = []
        for key_id, number in started.items():
            if self._rechecks.get(key_id) != number:
                continue  # a later recheck of this key read after this one: it decides
            if key_id not in self._by_key:
                self._rechecks.pop(key_id, None)
            snapshot = current.get(key_id)
            for watched in list(self._by_key.get(key_id, ())):
                if snapshot is None:
                    self._end(watched, "API key revoked")
                elif not origin_allowed(snapshot, watched.origin):
                    self._end(watched, "origin no longer allowed for this API key")
                elif self._take_settings(watched, snapshot):
                    changed.append(watched)
        if changed:
            self._epoch.bump()
            await recheck_streams(s for w in changed for s in list(w.context.streams.values()))

    def _take_settings(self, watched: Watched, key: KeySnapshot) -> bool:
        """The connection's principal takes the key's current scopes and expiry (and its rate
        limit); answers whether a right may have been taken away."""
        context = watched.context
        principal = context.principal
        if principal.rate_limit != key.rate_limit:
            context.principal = principal = replace(principal, rate_limit=key.rate_limit)
        scopes = frozenset(key.scopes)
        expiry = key.expires_at.timestamp() if key.expires_at is not None else None
        if expiry is not None and (principal.expires_at is None or expiry < principal.expires_at):
            context.principal = principal = replace(principal, expires_at=expiry)
            self._expire_at(watched, expiry)
        if scopes == principal.scopes:
            return False
        context.principal = replace(principal, scopes=scopes)
        return True

    def _expire_at(self, watched: Watched, expires_at: float | None) -> None:
        if watched.timer is not None:
            watched.timer.cancel()
            watched.timer = None
        if expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, expires_at - time.time())
            watched.timer = loop.call_at(loop.time() + delay, self._end, watched, "credentials expired")

    def _end(self, watched: Watched, reason: str) -> None:
        self.forget(watched)
        self._spawn(self._close(watched, reason))

    async def _close(self, watched: Watched, reason: str) -> None:
        with contextlib.suppress(Exception):  # already closed
            await watched.close(CLOSE_CODE, reason)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for index in (self._by_key, self._by_user):
            for entries in list(index.values()):
                for watched in list(entries):
                    self.forget(watched)
