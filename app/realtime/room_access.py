"""Per-connection memo of room authorizations, for operations sent many times a second (cursor
moves, broadcast events): the first call checks the policy, later ones cost a dict lookup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.auth.policy import Action
from app.errors import NotFound
from app.graphql.context import Info
from app.rooms.models import Room, RoomStatus


@dataclass(frozen=True)
class RoomTicket:
    room_id: str
    cursor_tick_s: float
    features: frozenset[str]


async def room_ticket(info: Info, room_id: uuid.UUID, action: Action) -> RoomTicket:
    context = info.context
    key = (room_id, action)
    ticket = context.room_tickets.get(key)
    if ticket is None:
        async with context.session() as session:
            room = await session.get(Room, room_id)
        if room is None or room.status == RoomStatus.DELETED:
            raise NotFound("room")
        await context.policy.room(room, action)
        ticket = RoomTicket(
            room_id=str(room.id),
            cursor_tick_s=room.cursor_tick_ms / 1000,
            features=frozenset(name for name, on in room.features.items() if on),
        )
        if context.websocket_or_none is not None:  # HTTP contexts die with the request anyway
            context.room_tickets[key] = ticket
    return ticket
