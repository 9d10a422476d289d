"""Live cursors, batched: never one message per move per receiver.

Each process keeps the latest cursor of each local connection per room and, once per room tick,
publishes ONE message with the cursors that changed (and those that went idle or left). Receivers
merge whatever arrived during a tick into one event. Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from app.realtime.hub import Hub


def channel(room_id: str) -> str:
    return f"cursors:{room_id}"


@dataclass
class CursorState:
    connection_id: str
    user_id: str
    info: dict[str, Any]
    x: float | None
    y: float | None
    element_id: str | None
    offset: dict[str, Any] | None
    selection: dict[str, Any] | None
    moved_at: float
    idle: bool = False


class RoomCursors:
    def __init__(self, room_id: str, tick_s: float) -> None:
        self.room_id = room_id
        self.tick_s = tick_s
        self.latest: dict[str, CursorState] = {}
        self.changed: set[str] = set()
        self.removed: set[str] = set()
        self.task: asyncio.Task[None] | None = None


class CursorBatcher:
    def __init__(self, hub: Hub, *, idle_after_s: float) -> None:
        self.hub = hub
        self.idle_after_s = idle_after_s
        self._rooms: dict[str, RoomCursors] = {}

    def move(self, room_id: str, tick_s: float, state: CursorState) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = RoomCursors(room_id, tick_s)
        room.latest[state.connection_id] = state
        room.changed.add(state.connection_id)
        room.removed.discard(state.connection_id)
        if room.task is None or room.task.done():
            room.task = asyncio.create_task(self._tick(room), name=f"cursors-{room_id}")

    def remove(self, room_id: str, connection_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None and room.latest.pop(connection_id, None) is not None:
            room.changed.discard(connection_id)
            room.removed.add(connection_id)
            if room.task is None or room.task.done():
                room.task = asyncio.create_task(self._tick(room), name=f"cursors-{room_id}")

    async def stop(self) -> None:
        tasks = [room.task for room in self._rooms.values() if room.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self, room: RoomCursors) -> None:
        # Tick while a cursor may still change state (move, go idle, leave); then stop.
        while True:
            await asyncio.sleep(room.tick_s)
            now = time.time()
            active = False
            for state in room.latest.values():
                if not state.idle and now - state.moved_at > self.idle_after_s:
                    state.idle = True
                    room.changed.add(state.connection_id)
                active = active or not state.idle
            if not room.changed and not room.removed:
                if not active:
                    break
                continue
            batch = {
                "cursors": [asdict(room.latest[c]) for c in room.changed if c in room.latest],
                "removed": sorted(room.removed),
            }
            room.changed.clear()
            room.removed.clear()
            await self.hub.publish(channel(room.room_id), json.dumps(batch, separators=(",", ":")))
        if not room.latest:
            self._rooms.pop(room.room_id, None)


def merge(batches: list[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Merge the batches received during one tick: latest state per connection, and removals."""
    latest: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    for raw in batches:
        batch = json.loads(raw)
        for cursor in batch["cursors"]:
            previous = latest.get(cursor["connection_id"])
            if previous is None or previous["moved_at"] <= cursor["moved_at"]:
                latest[cursor["connection_id"]] = cursor
            removed.discard(cursor["connection_id"])
        for connection_id in batch["removed"]:
            latest.pop(connection_id, None)
            removed.add(connection_id)
    return latest, removed
