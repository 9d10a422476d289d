"""Live subscriptions end when their room stops being open: archived or deleted.

Every process hears of a room change through the room cache's announcement. If this process has
subscribers in that room, it reads the room again and, if it is no longer active, ends each of
their streams with the error a new subscription would get (FORBIDDEN with reason ARCHIVED, or
NOT_FOUND); ending them makes present connections leave. After a transport reconnect, when
announcements may have been lost, every room with live subscribers here is read again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable

from app.errors import DomainError, Forbidden, NotFound
from app.graphql.ws.stream import FastStream
from app.rooms.cache import RoomCache
from app.rooms.models import RoomStatus

log = logging.getLogger(__name__)

StreamsOf = Callable[[str], Iterable[FastStream]]


class RoomWatch:
    def __init__(
        self, rooms: RoomCache, *streams_of: StreamsOf, live_rooms: Callable[[], Iterable[str]]
    ) -> None:
        self._rooms = rooms
        self._streams_of = streams_of
        self._live_rooms = live_rooms
        self._tasks: set[asyncio.Task[None]] = set()
        rooms.on_change.append(self._changed)

    def _streams(self, room_id: uuid.UUID) -> list[FastStream]:
        key = str(room_id)
        return [stream for streams_of in self._streams_of for stream in streams_of(key)]

    def _changed(self, room_id: uuid.UUID | None) -> None:
        rooms = [room_id] if room_id is not None else [uuid.UUID(r) for r in set(self._live_rooms())]
        for room in rooms:
            if self._streams(room):
                task = asyncio.ensure_future(self._check(room))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _check(self, room_id: uuid.UUID) -> None:
        try:
            room = await self._rooms.get(room_id)
        except Exception:
            log.warning("rechecking room %s failed", room_id, exc_info=True)
            return
        error: DomainError
        if room is None or room.status == RoomStatus.DELETED:
            error = NotFound("room")
        elif room.status != RoomStatus.ACTIVE:
            error = Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
        else:
            return
        for stream in self._streams(room_id):
            stream.fail(error)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
