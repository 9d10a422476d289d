"""Per-connection memo of room authorizations, for operations sent many times a second (cursor
moves, broadcast events): the first call checks the policy, later ones cost a dict lookup."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from app.auth.policy import Action
from app.errors import Forbidden, NotFound
from app.graphql.context import Info
from app.rooms.models import Room, RoomStatus


@dataclass(frozen=True)
class RoomTicket:
    room_id: str
    cursor_tick_s: float
    features: frozenset[str]


async def room_ticket(info: Info, room_id: uuid.UUID, action: Action) -> RoomTicket:
    context = info.context
    if context.websocket_or_none is None:  # HTTP contexts die with the request: nothing to memo
        return await _check(info, room_id, action)
    key = (room_id, action)
    pending = context.room_tickets.get(key)
    if pending is None:
        # Calls that arrive while the first check runs wait for it and resume in arrival order,
        # so a burst of cursor moves is applied in the order it was sent.
        pending = context.room_tickets[key] = asyncio.ensure_future(_check(info, room_id, action))
    try:
        return await asyncio.shield(pending)
    except Exception:
        context.room_tickets.pop(key, None)  # a refusal is not remembered: the next call asks again
        raise


async def _check(info: Info, room_id: uuid.UUID, action: Action) -> RoomTicket:
    async with info.context.session() as session:
        room = await session.get(Room, room_id)
    if room is None or room.status == RoomStatus.DELETED:
        raise NotFound("room")
    await info.context.policy.room(room, action)
    if room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    return RoomTicket(
        room_id=str(room.id),
        cursor_tick_s=room.cursor_tick_ms / 1000,
        features=frozenset(name for name, on in room.features.items() if on),
    )
