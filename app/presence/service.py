"""Presence, Phoenix-style: joins, leaves and updates published as diffs on the room's channel.

- A connection joins while its `roomPresence` subscription runs, and leaves when it ends.
- A connection that drops (socket closed without leaveRoom) leaves only after the grace period;
  if the same user joins the room again meanwhile, it takes the entry over: neither leave nor join.
- A connection whose socket says nothing (no message, no pong) for the room's TTL is removed by
  its own process, which knows its sockets first hand: a busy process is never taken for a dead
  one by the others. Its `roomPresence` ends with PRESENCE_EXPIRED, never silently.
- A reaper in one process at a time removes the entries of processes that died (their heartbeat
  key expired) and leaves overdue after the grace period.
- Every published change bumps the entry's version and is applied to this process's feed of the
  room at once (see feed.py); for the other processes, the changes of each room are published as
  ONE batch per tick.
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
from app.realtime.ticker import Ticker

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
PROCESS_TTL_S = 10.0
# An entry is stale once not seen for its TTL plus this slack (heartbeat and ping delays).
STALE_SLACK_S = 2 * HEARTBEAT_S


def channel(room_id: str) -> str:
    return f"presence:{room_id}"


def batch_message(process_id: str, ops: list[str]) -> str:
    """One room's changes in one tick, as published: `{"process": id, "ops": [[op, entry], ...]}`."""
    return '{"process":' + json.dumps(process_id) + ',"ops":[' + ",".join(ops) + "]}"


def encode_op(op: str, entry: PresenceEntry) -> str:
    return '["' + op + '",' + entry.to_json() + "]"


@dataclass
class LocalConnection:
    """One local connection present in one room; `activity.last_activity` is when its socket
    was last heard from (wall clock)."""

    room: str
    entry: PresenceEntry  # this process's copy, kept in step with what it writes
    activity: Any


class PresenceService:
    def __init__(self, registry: PresenceRegistry, hub: Hub, *, grace_s: float, tick_s: float = 0.05) -> None:
        self.registry = registry
        self.hub = hub
        self.grace_s = grace_s
        self.tick_s = tick_s
        self.process_id = uuid.uuid4().hex
        self.feeds: Feeds[PresenceFeed] = Feeds(lambda room: PresenceFeed(self, room))
        self._local: dict[tuple[str, str], LocalConnection] = {}  # (room, entry) -> connection
        self._pending_leaves: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._outgoing: dict[str, list[str]] = {}  # room -> this tick's changes, for other processes
        self._publisher = Ticker(tick_s, self._publish_batches)
        self._publishing: set[asyncio.Task[bool]] = set()

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
        self._publisher.cancel()
        self._publish_batches()
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=5)
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

    async def count_for_join(self, room: str, user_id: str) -> int:
        """The room's connections as a join by `user_id` sees them: an entry of theirs in its
        grace period is the one the join takes over, so it does not count against the limit
        (a full room's members come back after a deploy)."""
        count = await self.registry.count(room)
        return count - 1 if count and await self.registry.has_leaving(room, user_id) else count

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
        local = self._local.pop((room, entry_id), None)
        if not dropped or self.grace_s <= 0:
            await self._remove_and_publish(room, entry_id)
            return
        # This process's copy is what it last wrote (only it writes its entries).
        entry = local.entry if local is not None else await self.registry.get(room, entry_id)
        if entry is None:
            return
        entry.leaving_at = time.time()
        await self.registry.mark_leaving(room, entry)
        key = (room, entry_id)
        self._pending_leaves[key] = asyncio.create_task(self._leave_after_grace(room, entry_id))

    async def _leave_after_grace(self, room: str, entry_id: str) -> None:
        await asyncio.sleep(self.grace_s)
        self._pending_leaves.pop((room, entry_id), None)
        # Unless the user came back meanwhile and took the entry over (it is no longer leaving).
        entry = await self.registry.remove(room, entry_id, only_leaving=True)
        if entry is not None:
            self._announce(room, "leave", entry)

    async def _put_and_publish(self, room: str, op: str, entry: PresenceEntry) -> None:
        entry.version += 1
        await self.registry.put(room, entry)
        self._announce(room, op, entry)

    async def _remove_and_publish(self, room: str, entry_id: str) -> None:
        entry = await self.registry.remove(room, entry_id)
        if entry is not None:
            self._announce(room, "leave", entry)

    def _announce(self, room: str, op: str, entry: PresenceEntry) -> None:
        feed = self.feeds.get(room)
        if feed is not None:
            feed.apply(op, entry)  # this process's subscribers hear it at the tick, without a round trip
        if self.hub.shared:
            self._outgoing.setdefault(room, []).append(encode_op(op, entry))
            self._publisher.poke()

    def _publish_batches(self) -> None:
        """One message per room per tick with this process's changes (the hub drops what fails
        while Redis is down; every process resyncs when it is back)."""
        batches, self._outgoing = self._outgoing, {}
        for room, ops in batches.items():
            task = asyncio.ensure_future(self.hub.publish(channel(room), batch_message(self.process_id, ops)))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self.registry.heartbeat(self.process_id, PROCESS_TTL_S)
                await self._expire_silent()
            except Exception:
                log.warning("presence heartbeat failed", exc_info=True)

    async def _expire_silent(self) -> None:
        """Remove this process's connections whose socket said nothing (messages, pongs) for the
        room's TTL: the network vanished without closing them."""
        now = time.time()
        for key, connection in list(self._local.items()):
            entry = connection.entry
            silent = now - connection.activity.last_activity
            if entry.leaving_at is None and silent > entry.ttl_s + STALE_SLACK_S:
                log.info(
                    "presence entry %s of %s expired (silent for %.1f s)",
                    entry.entry_id,
                    entry.user_id,
                    silent,
                )
                self._local.pop(key, None)
                await self._remove_and_publish(connection.room, entry.entry_id)

    async def _reaper_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if await self.registry.acquire_reaper(self.process_id, HEARTBEAT_S):
                    await self.reap()
            except Exception:
                log.warning("presence reaper failed", exc_info=True)

    async def reap(self) -> int:
        """Remove entries whose process died, leaves overdue after the grace period, and entries
        of this process that no connection holds (left behind by a failed write)."""
        removed = 0
        now = time.time()
        for room in await self.registry.rooms():
            entries = await self.registry.entries(room)
            alive = await self.registry.live_processes({e.process_id for e in entries})
            for entry in entries:
                dead_process = entry.process_id not in alive
                overdue = entry.leaving_at is not None and now - entry.leaving_at > self.grace_s + HEARTBEAT_S
                orphan = (
                    entry.process_id == self.process_id
                    and entry.leaving_at is None
                    and (room, entry.entry_id) not in self._local
                    and now - entry.last_seen > entry.ttl_s + STALE_SLACK_S
                )
                if dead_process or overdue or orphan:
                    log.info(
                        "presence entry %s of %s reaped (dead process %s, overdue %s, orphan %s)",
                        entry.entry_id,
                        entry.user_id,
                        dead_process,
                        overdue,
                        orphan,
                    )
                    self._local.pop((room, entry.entry_id), None)
                    await self._remove_and_publish(room, entry.entry_id)
                    removed += 1
        return removed
