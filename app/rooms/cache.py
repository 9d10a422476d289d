"""What realtime operations need to know of a room, cached per process.

Joining, moving a cursor or broadcasting must not read the database each time (a thousand joins
in a second would exhaust the pool). Rooms are cached for a few seconds; a change made through
the API is announced on the hub after its commit and evicts the room in every process at once.
The TTL only bounds staleness when an announcement is lost (a Redis outage; changes made by a
job in a worker process).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.unit_of_work import active_session
from app.realtime.announced import MISSING, Announcements, TTLCache
from app.realtime.hub import Hub
from app.realtime.single_flight import SingleFlight
from app.rooms.models import Room, RoomAccess, RoomStatus

CHANNEL = "rooms:changed"


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    id: uuid.UUID
    organization_id: uuid.UUID
    slug: str
    access: RoomAccess
    status: RoomStatus
    password_hash: str | None
    max_participants: int
    presence_ttl_s: int
    cursor_tick_ms: int
    features: frozenset[str]

    @classmethod
    def of(cls, room: Room) -> RoomSnapshot:
        return cls(
            id=room.id,
            organization_id=room.organization_id,
            slug=room.slug,
            access=room.access,
            status=room.status,
            password_hash=room.password_hash,
            max_participants=room.max_participants,
            presence_ttl_s=room.presence_ttl_s,
            cursor_tick_ms=room.cursor_tick_ms,
            features=frozenset(name for name, on in room.features.items() if on),
        )


class RoomCache:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], hub: Hub, ttl_s: float) -> None:
        self._session_factory = session_factory
        self._rooms: TTLCache[uuid.UUID, RoomSnapshot | None] = TTLCache(ttl_s)
        self._loads: SingleFlight[uuid.UUID, RoomSnapshot | None] = SingleFlight()
        # Bumped by every eviction: a read that began before one does not store what it read.
        self._generation = 0
        self._announcements = Announcements(hub, CHANNEL, self._evict)
        # Called with the id of every room announced as changed, and with None after a transport
        # reconnect (announcements may have been lost). In the hub's task: must not block.
        self.on_change: list[Callable[[uuid.UUID | None], None]] = []

    async def start(self) -> None:
        await self._announcements.start()

    async def stop(self) -> None:
        await self._announcements.stop()

    async def get(self, room_id: uuid.UUID) -> RoomSnapshot | None:
        """The room, or None if it does not exist (deleted rooms are returned: callers decide)."""
        found = self._rooms.get(room_id)
        if found is not MISSING:
            return found  # type: ignore[return-value]
        session = active_session()
        if session is not None:
            # Inside a unit of work: read through its session, not a shared load that needs a
            # connection of its own (see app/db/unit_of_work.py); not cached, since the unit may
            # hold uncommitted changes of the room.
            room = await session.get(Room, room_id)
            return RoomSnapshot.of(room) if room is not None else None
        # One read for a burst of joins, which none of them cancels for the others by leaving.
        return await self._loads.run(room_id, lambda: self._load(room_id))

    async def _load(self, room_id: uuid.UUID) -> RoomSnapshot | None:
        generation = self._generation
        async with self._session_factory() as session:
            room = await session.get(Room, room_id)
        snapshot = RoomSnapshot.of(room) if room is not None else None
        if generation == self._generation:
            self._rooms.put(room_id, snapshot)
        return snapshot

    async def changed(self, room_id: uuid.UUID) -> None:
        """A room changed (call after the commit): every process forgets it."""
        await self._announcements.announce(room_id)

    def _evict(self, room_id: uuid.UUID | None) -> None:
        self._generation += 1
        # A read in flight may have begun before the change: later callers (a recheck of the
        # room's streams among them) read again rather than join it.
        self._loads.forget(room_id)
        if room_id is None:
            self._rooms.clear()  # announcements may have been lost while the transport was down
        else:
            self._rooms.pop(room_id)
        for callback in self.on_change:
            callback(room_id)
