"""Per-connection memo of room authorizations, for operations sent many times a second (cursor
moves, broadcast events): the first call checks the policy, later ones cost a dict lookup."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from app.auth.policy import Action
from app.errors import Forbidden, NotFound
from app.graphql.context import Context
from app.rooms.cache import RoomSnapshot
from app.rooms.models import RoomStatus


@dataclass(frozen=True)
class RoomTicket:
    room_id: str
    cursor_tick_s: float
    features: frozenset[str]


async def load_room(context: Context, room_id: uuid.UUID) -> RoomSnapshot:
    """The room from the per-process cache; NOT_FOUND if it does not exist (or was deleted)."""
    room = await context.state.rooms.get(room_id)
    if room is None or room.status == RoomStatus.DELETED:
        raise NotFound("room")
    return room


async def room_ticket(context: Context, room_id: uuid.UUID, action: Action) -> RoomTicket:
    if context.websocket_or_none is None:  # HTTP contexts die with the request: nothing to memo
        return await _check(context, room_id, action)
    key = (room_id, action)
    memo = context.room_tickets.get(key)
    if isinstance(memo, RoomTicket):
        return memo
    if memo is None:
        # Calls that arrive while the first check runs wait for it and resume in arrival order,
        # so a burst of cursor moves is applied in the order it was sent.
        memo = context.room_tickets[key] = asyncio.ensure_future(_check(context, room_id, action))
    try:
        ticket: RoomTicket = await asyncio.shield(memo)
    except Exception:
        context.room_tickets.pop(key, None)  # a refusal is not remembered: the next call asks again
        raise
    context.room_tickets[key] = ticket  # the ticket itself, not the finished task
    return ticket


async def _check(context: Context, room_id: uuid.UUID, action: Action) -> RoomTicket:
    room = await load_room(context, room_id)
    await context.policy.room(room, action)
    if room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    return RoomTicket(room_id=str(room.id), cursor_tick_s=room.cursor_tick_ms / 1000, features=room.features)
