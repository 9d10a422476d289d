"""Durable traces of presence (participants, connection_logs), written in batches off the hot path.

Joins and leaves only append to an in-memory buffer; a background task writes what accumulated
in one transaction every `interval_s`, and at shutdown. The buffer is bounded: past its size the
oldest traces are dropped (and counted), never memory grown.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics.models import ConnectionEventType, ConnectionLog
from app.db.types import utcnow
from app.periodic_flush import PeriodicFlush
from app.rooms.models import Participant, ParticipantStatus, Room

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class Who:
    """Who is connecting, as the database knows them."""

    user_id: uuid.UUID | None = None  # a developer
    end_user_id: uuid.UUID | None = None  # an end-user of the developer's app
    ip: str | None = None
    user_agent: str | None = None


@dataclass
class _Trace:
    kind: str  # connect | reconnect | disconnect
    room_id: uuid.UUID
    participant_id: uuid.UUID
    connection_id: str
    who: Who
    at: datetime = field(default_factory=utcnow)
    presence: dict[str, Any] = field(default_factory=dict)


class PresenceRecorder(PeriodicFlush):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        interval_s: float,
        max_buffer: int,
        live_rooms: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        super().__init__(interval_s, "presence-recorder")
        self._session_factory = session_factory
        self._live_rooms = live_rooms
        self._last_touch = 0.0
        self._buffer: deque[_Trace] = deque(maxlen=max_buffer)
        self.dropped = 0

    def _append(self, trace: _Trace) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(trace)

    def connected(
        self, room_id: uuid.UUID, connection_id: str, who: Who, presence: dict[str, Any], *, resumed: bool
    ) -> uuid.UUID:
        participant_id = uuid.uuid4()
        kind = "reconnect" if resumed else "connect"
        self._append(_Trace(kind, room_id, participant_id, connection_id, who, presence=presence))
        return participant_id

    def disconnected(
        self, room_id: uuid.UUID, participant_id: uuid.UUID, connection_id: str, who: Who
    ) -> None:
        self._append(_Trace("disconnect", room_id, participant_id, connection_id, who))

    async def flush(self) -> int:
        """Write every buffered trace in one transaction; returns how many."""
        traces = list(self._buffer)
        self._buffer.clear()
        await self._touch_live_rooms()
        if not traces:
            return 0
        try:
            async with self._session_factory() as session:
                await self._write(session, traces)
                await session.commit()
        except Exception:
            log.exception("writing %d presence traces failed; they are dropped", len(traces))
            return 0
        return len(traces)

    async def _touch_live_rooms(self) -> None:
        """Occupied rooms stay active (not archived as idle), refreshed once a minute."""
        if time.monotonic() - self._last_touch < TOUCH_EVERY_S:
            return
        self._last_touch = time.monotonic()
        rooms = [uuid.UUID(room) for room in self._live_rooms()]
        if not rooms:
            return
        try:
            room_table = Room.__table__  # type: ignore[attr-defined]
            async with self._session_factory() as session:
                await session.execute(
                    update(room_table).where(room_table.c.id.in_(rooms)).values(last_active_at=utcnow())
                )
                await session.commit()
        except Exception:
            log.warning("marking occupied rooms active failed", exc_info=True)

    async def _write(self, session: AsyncSession, traces: list[_Trace]) -> None:
        # Core statements, executemany: building ORM objects would cost more than the writes.
        participants: list[dict[str, Any]] = []
        logs: list[dict[str, Any]] = []
        disconnects: list[dict[str, Any]] = []
        last_active: dict[uuid.UUID, datetime] = {}
        for trace in traces:
            last_active[trace.room_id] = trace.at
            who = trace.who
            user_agent = (who.user_agent or "")[:300] or None
            if trace.kind in ("connect", "reconnect"):
                participants.append(
                    {
                        "id": trace.participant_id,
                        "room_id": trace.room_id,
                        "user_id": who.user_id,
                        "end_user_id": who.end_user_id,
                        "connection_id": trace.connection_id,
                        "connected_at": trace.at,
                        "disconnected_at": None,
                        "last_seen_at": trace.at,
                        "status": ParticipantStatus.ONLINE,
                        "ip_address": who.ip,
                        "user_agent": user_agent,
                        "presence_data": trace.presence,
                        "inserted_at": trace.at,
                        "updated_at": trace.at,
                    }
                )
            else:
                disconnects.append({"participant": trace.participant_id, "at": trace.at})
            logs.append(
                {
                    "id": uuid.uuid4(),
                    "room_id": trace.room_id,
                    "user_id": who.user_id,
                    "end_user_id": who.end_user_id,
                    "event_type": ConnectionEventType(trace.kind),
                    "connection_id": trace.connection_id,
                    "ip_address": who.ip,
                    "user_agent": user_agent,
                    "metadata": {},
                    "inserted_at": trace.at,
                }
            )
        participant_table = Participant.__table__  # type: ignore[attr-defined]
        if participants:
            await session.execute(insert(participant_table), participants)
        await session.execute(insert(ConnectionLog.__table__), logs)  # type: ignore[attr-defined]
        if disconnects:  # after the inserts: a connection may come and go within one batch
            await session.execute(
                update(participant_table)
                .where(participant_table.c.id == bindparam("participant"))
                .values(
                    disconnected_at=bindparam("at"), last_seen_at=bindparam("at"), updated_at=bindparam("at")
                ),
                disconnects,
            )
        room_table = Room.__table__  # type: ignore[attr-defined]
        await session.execute(
            update(room_table)
            .where(room_table.c.id == bindparam("room"))
            .values(last_active_at=bindparam("at")),
            [{"room": room_id, "at": at} for room_id, at in last_active.items()],
        )
