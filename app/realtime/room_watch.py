"""Live subscriptions end when their room stops being open to them: archived, deleted, made
private, its password changed.

Every process hears of a room change through the room cache's announcement. It bumps the access
epoch (memoized authorizations of the room are asked again on their next use), and if this
process has subscribers in that room, it reads the room again: if it is no longer active, each
of their streams ends with the error a new subscription would get (FORBIDDEN with reason
ARCHIVED, or NOT_FOUND); otherwise each stream is authorized again and ends if refused now.
Ending them makes present connections leave. After a transport reconnect, when announcements may
have been lost, every room with live subscribers here is read again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable

from app.errors import DomainError, Forbidden, NotFound
from app.realtime.access_epoch import AccessEpoch, recheck_streams
from app.realtime.stream import Stream
from app.rooms.cache import RoomCache
from app.rooms.models import RoomStatus

log = logging.getLogger(__name__)

StreamsOf = Callable[[str], Iterable[Stream]]


class RoomWatch:
    def __init__(
        self,
        rooms: RoomCache,
        epoch: AccessEpoch,
        *streams_of: StreamsOf,
        live_rooms: Callable[[], Iterable[str]],
    ) -> None:
        self._rooms = rooms
        self._epoch = epoch
        self._streams_of = streams_of
        self._live_rooms = live_rooms
        self._tasks: set[asyncio.Task[None]] = set()
        rooms.on_change.append(self._changed)

    def _streams(self, room_id: uuid.UUID) -> list[Stream]:
        key = str(room_id)
        return [stream for streams_of in self._streams_of for stream in streams_of(key)]

    def _changed(self, room_id: uuid.UUID | None) -> None:
        if room_id is None:
            self._epoch.bump()
        else:
            self._epoch.bump_room(str(room_id))
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
            await recheck_streams(self._streams(room_id))
            return
        for stream in self._streams(room_id):
            stream.fail(error)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
