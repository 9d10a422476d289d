"""Presence, Phoenix-style: joins, leaves and updates published as diffs on the room's channel.

- A connection joins while its `roomPresence` subscription runs, and leaves when it ends.
- A connection that drops (socket closed without leaveRoom) leaves only after the grace period;
  if the same user joins the room again meanwhile, it takes the entry over: neither leave nor join.
- Entries carry last_seen, refreshed from the connection's activity by a heartbeat; a reaper in
  one process at a time removes entries not seen for the room's TTL or whose process died.
- Every published change bumps the entry's version and is applied to this process's feed of the
  room at once (see feed.py); other processes apply it from the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.presence.feed import PresenceFeed
from app.realtime.feeds import Feeds
from app.realtime.hub import Hub
from app.realtime.presence_registry import PresenceEntry, PresenceRegistry

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
PROCESS_TTL_S = 10.0
# An entry is stale once not seen for its TTL plus this slack (heartbeat and ping delays).
STALE_SLACK_S = 2 * HEARTBEAT_S


def channel(room_id: str) -> str:
    return f"presence:{room_id}"


def encode(op: str, entry: PresenceEntry) -> str:
    return json.dumps({"op": op, "entry": entry.to_json()}, separators=(",", ":"))


def decode(message: str) -> tuple[str, PresenceEntry]:
    data = json.loads(message)
    return data["op"], PresenceEntry.from_json(data["entry"])


@dataclass
class LocalConnection:
    """One local connection present in one room; `activity.last_activity` is when its socket
    was last heard from (wall clock)."""

    room: str
    entry: PresenceEntry  # this process's copy, kept in step with what it writes
    activity: Any


class PresenceService:
    def __init__(self, registry: PresenceRegistry, hub: Hub, *, grace_s: float) -> None:
        self.registry = registry
        self.hub = hub
        self.grace_s = grace_s
        self.process_id = uuid.uuid4().hex
        self.feeds: Feeds[PresenceFeed] = Feeds(lambda room: PresenceFeed(self, room))
        self._local: dict[tuple[str, str], LocalConnection] = {}  # (room, entry) -> connection
        self._pending_leaves: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.hub.on_reconnect(self.restore)
        await self.registry.heartbeat(self.process_id, PROCESS_TTL_S)
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="presence-heartbeat"),
            asyncio.create_task(self._reaper_loop(), name="presence-reaper"),
        ]

    async def stop(self) -> None:
        for task in (*self._tasks, *self._pending_leaves.values()):
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A clean shutdown: our connections leave now rather than after a TTL.
        for connection in list(self._local.values()):
            await self._remove_and_publish(connection.room, connection.entry.entry_id)
        self._local.clear()
        await self.feeds.stop()

    async def restore(self) -> None:
        """Redis came back empty (it keeps nothing on disk): put this process's entries back and
        announce them, so every process converges on who is present."""
        await self.registry.heartbeat(self.process_id, PROCESS_TTL_S)
        for connection in list(self._local.values()):
            connection.entry.last_seen = time.time()
            await self._put_and_publish(connection.room, "join", connection.entry)

    def local_rooms(self) -> set[str]:
        """Rooms in which this process holds connections now."""
        return {room for room, _ in self._local}

    async def count(self, room_id: uuid.UUID | str) -> int:
        return await self.registry.count(str(room_id))

    async def entries(self, room_id: str) -> list[PresenceEntry]:
        return await self.registry.entries(room_id)

    async def join(
        self,
        room: str,
        *,
        user_id: str,
        info: dict[str, Any],
        status: str,
        presence: dict[str, Any],
        ttl_s: float,
        activity: Any,
    ) -> tuple[PresenceEntry, bool]:
        """Join, or take over this user's entry that is within its grace period (then True)."""
        now = time.time()
        taken_over = await self.registry.take_leaving(room, user_id)
        if taken_over is not None:
            pending = self._pending_leaves.pop((room, taken_over.entry_id), None)
            if pending is not None:
                pending.cancel()
            changed = (taken_over.status, taken_over.presence, taken_over.info) != (status, presence, info)
            entry = taken_over
            entry.status, entry.presence, entry.info = status, presence, info
            entry.process_id, entry.last_seen, entry.leaving_at, entry.ttl_s = (
                self.process_id,
                now,
                None,
                ttl_s,
            )
            if changed:
                await self._put_and_publish(room, "update", entry)
            else:
                await self.registry.put(room, entry)
        else:
            entry = PresenceEntry(
                entry_id=uuid.uuid4().hex,
                user_id=user_id,
                info=info,
                status=status,
                presence=presence,
                joined_at=now,
                process_id=self.process_id,
                last_seen=now,
                ttl_s=ttl_s,
            )
            await self._put_and_publish(room, "join", entry)
        self._local[(room, entry.entry_id)] = LocalConnection(room, entry, activity)
        return entry, taken_over is not None

    async def update(
        self, room: str, entry_id: str, *, status: str | None, presence: dict[str, Any] | None
    ) -> PresenceEntry | None:
        entry = await self.registry.get(room, entry_id)
        if entry is None:
            return None
        if status is not None:
            entry.status = status
        if presence is not None:
            entry.presence = presence
        entry.last_seen = time.time()
        local = self._local.get((room, entry_id))
        if local is not None:
            local.entry = entry
        await self._put_and_publish(room, "update", entry)
        return entry

    async def leave(self, room: str, entry_id: str, *, dropped: bool) -> None:
        """A graceful leave is published now; a dropped connection waits for the grace period."""
        self._local.pop((room, entry_id), None)
        if not dropped or self.grace_s <= 0:
            await self._remove_and_publish(room, entry_id)
            return
        entry = await self.registry.get(room, entry_id)
        if entry is None:
            return
        entry.leaving_at = time.time()
        await self.registry.mark_leaving(room, entry)
        key = (room, entry_id)
        self._pending_leaves[key] = asyncio.create_task(self._leave_after_grace(room, entry_id))

    async def _leave_after_grace(self, room: str, entry_id: str) -> None:
        await asyncio.sleep(self.grace_s)
        self._pending_leaves.pop((room, entry_id), None)
        entry = await self.registry.get(room, entry_id)
        if entry is not None and entry.leaving_at is not None:
            await self._remove_and_publish(room, entry_id)

    async def _put_and_publish(self, room: str, op: str, entry: PresenceEntry) -> None:
        entry.version += 1
        await self.registry.put(room, entry)
        await self._announce(room, op, entry)

    async def _remove_and_publish(self, room: str, entry_id: str) -> None:
        entry = await self.registry.remove(room, entry_id)
        if entry is not None:
            await self._announce(room, "leave", entry)

    async def _announce(self, room: str, op: str, entry: PresenceEntry) -> None:
        feed = self.feeds.get(room)
        if feed is not None:
            feed.apply(op, entry)  # this process's subscribers hear it now, without a round trip
        if self.hub.shared:
            await self.hub.publish(channel(room), encode(op, entry))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self.registry.heartbeat(self.process_id, PROCESS_TTL_S)
                await self._refresh_local()
            except Exception:
                log.warning("presence heartbeat failed", exc_info=True)

    async def _refresh_local(self) -> None:
        # last_seen follows the socket's real activity (messages, pongs), so a connection that
        # vanished without closing stops being refreshed and ages out after the room's TTL.
        # Each entry is written at most every third of its TTL.
        for connection in list(self._local.values()):
            entry = connection.entry
            activity = connection.activity.last_activity
            if entry.leaving_at is None and activity - entry.last_seen >= entry.ttl_s / 3:
                entry.last_seen = activity
                await self.registry.put(connection.room, entry)

    async def _reaper_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if await self.registry.acquire_reaper(self.process_id, HEARTBEAT_S):
                    await self.reap()
            except Exception:
                log.warning("presence reaper failed", exc_info=True)

    async def reap(self) -> int:
        """Remove entries whose process died or that were not seen for their room's TTL."""
        removed = 0
        now = time.time()
        for room in await self.registry.rooms():
            entries = await self.registry.entries(room)
            alive = await self.registry.live_processes({e.process_id for e in entries})
            for entry in entries:
                dead_process = entry.process_id not in alive
                stale = now - entry.last_seen > entry.ttl_s + STALE_SLACK_S
                overdue = entry.leaving_at is not None and now - entry.leaving_at > self.grace_s + HEARTBEAT_S
                if dead_process or stale or overdue:
                    log.info(
                        "presence entry %s of %s reaped (dead process %s, stale %s, overdue %s)",
                        entry.entry_id,
                        entry.user_id,
                        dead_process,
                        stale,
                        overdue,
                    )
                    self._local.pop((room, entry.entry_id), None)
                    await self._remove_and_publish(room, entry.entry_id)
                    removed += 1
        return removed
