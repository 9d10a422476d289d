"""Live cursors, batched per room tick: never one message per move per receiver.

Each process keeps, per room, the latest cursor of every connection it has heard of (its own
movers and, through the hub, other processes' batches). A move only updates that map; once per
tick (the room's, default 50 ms) the room
  - publishes ONE message with its own connections' changes, for the other processes, and
  - renders the changes once per distinct subscription document and sends each local subscriber
    at most one frame, with its own cursor left out (a slice of the shared text).
A quiet room has no timer: the first move after a pause is sent on the next loop iteration, later
ones at most once per tick. A receiver whose socket is backed up is skipped, not queued; when it
drains it gets the whole current state (`full: true`), so it only ever sees the latest positions.
Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from app.realtime.audience import Audience
from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC
from app.realtime.stream import Stream

log = logging.getLogger(__name__)

# A process that has cursors in a room says so at least every `heartbeat_s` (5 s), even when
# they are still; other processes forget its cursors after this many silent periods (it died).
SILENT_HEARTBEATS = 3


def channel(room_id: str) -> str:
    return f"cursors:{room_id}"


@dataclass(slots=True)
class CursorState:
    """One connection's cursor: what travels between processes and what subscriptions render."""

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


@dataclass(slots=True)
class CursorBatchData:
    cursors: list[CursorState]
    removed: list[str]
    full: bool = False


@dataclass(slots=True)
class _Remote:
    state: CursorState
    process_id: str


@dataclass(eq=False)
class CursorRoom:
    room_id: str
    tick_s: float
    rooms: CursorRooms
    latest: dict[str, CursorState] = field(default_factory=dict)
    local: set[str] = field(default_factory=set)  # this process's connections with a cursor here
    remote_process: dict[str, str] = field(default_factory=dict)  # connection -> its process
    heard: dict[str, float] = field(default_factory=dict)  # other process -> last message (monotonic)
    changed: dict[str, None] = field(default_factory=dict)  # since the last tick, to deliver
    removed: dict[str, None] = field(default_factory=dict)
    local_changed: dict[str, None] = field(default_factory=dict)  # since the last tick, to publish
    local_removed: dict[str, None] = field(default_factory=dict)
    audience: Audience = field(default_factory=Audience)
    listening: bool = False
    last_tick: float = 0.0
    last_publish: float = 0.0
    timer: asyncio.Handle | None = None
    timer_at: float = 0.0
    timer_is_tick: bool = False  # the pending timer is the next tick (not a later wake-up)

    # ------------------------------------------------------------------ changes

    def move(self, state: CursorState) -> None:
        key = state.connection_id
        self.latest[key] = state
        self.local.add(key)
        self.changed[key] = None
        self.removed.pop(key, None)
        self.local_changed[key] = None
        self.local_removed.pop(key, None)
        self.schedule()

    def remove_local(self, connection_id: str) -> None:
        if connection_id in self.local:
            self.local.discard(connection_id)
            self._forget(connection_id)
            self.local_changed.pop(connection_id, None)
            self.local_removed[connection_id] = None
            self.schedule()

    def _forget(self, connection_id: str) -> None:
        self.latest.pop(connection_id, None)
        self.changed.pop(connection_id, None)
        self.removed[connection_id] = None

    def on_message(self, message: str) -> None:
        """Another process's batch (or RESYNC after a transport reconnect)."""
        if message == RESYNC:
            return  # cursors are latest-state: the next moves bring everyone up to date
        batch = json.loads(message)
        process = batch["process"]
        if process == self.rooms.process_id:
            return
        self.heard[process] = time.monotonic()
        for data in batch["cursors"]:
            state = CursorState(**data)
            key = state.connection_id
            previous = self.latest.get(key)
            if key in self.local or (previous is not None and previous.moved_at > state.moved_at):
                continue
            self.latest[key] = state
            self.remote_process[key] = process
            self.changed[key] = None
            self.removed.pop(key, None)
        for key in batch["removed"]:
            if key in self.latest and key not in self.local:
                self.remote_process.pop(key, None)
                self._forget(key)
        if self.changed or self.removed:
            self.schedule()

    # ------------------------------------------------------------------ ticks

    def schedule(self, at: float | None = None) -> None:
        """Tick at `at`, or as soon as the tick period allows."""
        if at is None and self.timer_is_tick:
            return  # a tick is due already (the common case: one call per move)
        loop = asyncio.get_running_loop()
        when = at if at is not None else max(loop.time(), self.last_tick + self.tick_s)
        if self.timer is not None:
            if self.timer_at <= when:
                return
            self.timer.cancel()
        self.timer_at = when
        self.timer_is_tick = at is None
        self.timer = loop.call_at(when, self.tick)

    def tick(self) -> None:
        self.timer = None
        self.timer_is_tick = False
        loop_now = asyncio.get_running_loop().time()
        self.last_tick = loop_now
        try:
            self._mark_idle()
            self._expire_silent_processes()
            self._publish(loop_now)
            if self.changed or self.removed:
                changed = [self.latest[key] for key in self.changed if key in self.latest]
                removed = list(self.removed)
                self.changed.clear()
                self.removed.clear()
                self._deliver(CursorBatchData(changed, removed))
        except Exception:
            log.exception("cursor tick of room %s failed", self.room_id)
        self._next_wake(loop_now)

    def _mark_idle(self) -> None:
        now = time.time()
        idle_after = self.rooms.idle_after_s
        for key in self.local:
            state = self.latest[key]
            if not state.idle and now - state.moved_at > idle_after:
                state.idle = True
                self.changed[key] = None
                self.local_changed[key] = None

    def _expire_silent_processes(self) -> None:
        if not self.heard:
            return
        deadline = time.monotonic() - SILENT_HEARTBEATS * self.rooms.heartbeat_s
        for process in [p for p, at in self.heard.items() if at < deadline]:
            del self.heard[process]
            for key in [k for k, p in self.remote_process.items() if p == process]:
                del self.remote_process[key]
                self._forget(key)

    def _publish(self, loop_now: float) -> None:
        if not self.rooms.hub.shared:  # in memory there is no other process to tell
            self.local_changed.clear()
            self.local_removed.clear()
            return
        beat = self.local and loop_now - self.last_publish >= self.rooms.heartbeat_s
        if not (self.local_changed or self.local_removed or beat):
            return
        batch = {
            "process": self.rooms.process_id,
            "cursors": [asdict(self.latest[key]) for key in self.local_changed if key in self.latest],
            "removed": list(self.local_removed),
        }
        self.local_changed.clear()
        self.local_removed.clear()
        self.last_publish = loop_now
        self.rooms.publish(channel(self.room_id), json.dumps(batch, separators=(",", ":")))

    def _next_wake(self, loop_now: float) -> None:
        """Sleep until something can change without a message: an idle mark, a heartbeat."""
        wake: list[float] = []
        active = [self.latest[key].moved_at for key in self.local if not self.latest[key].idle]
        if active:
            wake.append(loop_now + max(0.0, min(active) + self.rooms.idle_after_s - time.time()) + 0.01)
        if (self.local and self.rooms.hub.shared) or self.heard:
            wake.append(loop_now + self.rooms.heartbeat_s)
        if self.changed or self.removed or self.local_changed or self.local_removed:
            wake.append(self.last_tick + self.tick_s)
        if wake:
            self.schedule(at=min(wake))
        elif not self.audience and not self.local:
            self.rooms.discard(self)

    # ------------------------------------------------------------------ delivery

    def _deliver(self, batch: CursorBatchData) -> None:
        cursors = batch.cursors
        only = cursors[0].connection_id if len(cursors) == 1 else None
        for renderer, streams in self.audience.groups.items():
            items = [(c.connection_id, renderer.item_texts(c, "cursors")) for c in cursors]
            template = renderer.assemble(batch, {"cursors": items})
            for stream in streams:
                own = stream.key
                if not batch.removed and (not cursors or own == only):
                    continue  # nothing in this batch but the receiver's own cursor
                if stream.outbox.blocked:
                    stream.outbox.mark_stale(stream)  # it gets the full state once it drains
                    continue
                stream.send(template.text(own))

    def send_full(self, stream: Stream) -> None:
        """Everything known now, but the receiver's own cursor: replaces whatever it shows."""
        others = [state for key, state in self.latest.items() if key != stream.key]
        stream.send(stream.renderer.render(CursorBatchData(others, [], full=True)))


class CursorRooms:
    """This process's cursor rooms: alive while they have local movers or subscribers."""

    def __init__(self, hub: Hub, *, process_id: str, idle_after_s: float, heartbeat_s: float = 5.0) -> None:
        self.hub = hub
        self.process_id = process_id
        self.idle_after_s = idle_after_s
        self.heartbeat_s = heartbeat_s
        self._rooms: dict[str, CursorRoom] = {}
        self._publishing: set[asyncio.Task[None]] = set()

    def room(self, room_id: str, tick_s: float) -> CursorRoom:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = CursorRoom(room_id, tick_s, self)
        return room

    def get(self, room_id: str) -> CursorRoom | None:
        return self._rooms.get(room_id)

    def room_ids(self) -> list[str]:
        return list(self._rooms)

    def move(self, room_id: str, tick_s: float, state: CursorState) -> None:
        self.room(room_id, tick_s).move(state)

    def remove(self, room_id: str, connection_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.remove_local(connection_id)

    async def subscribe(self, room_id: str, tick_s: float, stream: Stream) -> CursorRoom:
        room = self.room(room_id, tick_s)
        if not room.listening:
            room.listening = True
            try:
                await self.hub.listen(channel(room_id), room.on_message)
            except BaseException:
                room.listening = False
                raise
        room.audience.add(stream)
        stream.view = room
        stream.on_resync = room.send_full
        stream.on_end = _Unsubscribe(self, stream).run  # a bound method: no closure per stream
        if any(key != stream.key for key in room.latest):
            room.send_full(stream)
        return room

    async def unsubscribe(self, room: CursorRoom, stream: Stream) -> None:
        room.audience.remove(stream)
        if not room.audience and room.listening:
            room.listening = False
            await self.hub.unlisten(channel(room.room_id), room.on_message)
            if room.timer is None and not room.local:
                self.discard(room)

    def discard(self, room: CursorRoom) -> None:
        if self._rooms.get(room.room_id) is room and not room.audience and not room.local:
            if room.timer is not None:
                room.timer.cancel()
            del self._rooms[room.room_id]

    def publish(self, channel_name: str, message: str) -> None:
        task = asyncio.ensure_future(self.hub.publish(channel_name, message))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def stop(self) -> None:
        for room in self._rooms.values():
            if room.timer is not None:
                room.timer.cancel()
        self._rooms.clear()
        for task in list(self._publishing):
            task.cancel()


class _Unsubscribe:
    __slots__ = ("rooms", "stream")

    def __init__(self, rooms: CursorRooms, stream: Stream) -> None:
        self.rooms = rooms
        self.stream = stream

    async def run(self, dropped: bool) -> None:
        await self.rooms.unsubscribe(self.stream.view, self.stream)
