"""Per-connection memo of room authorizations, for operations sent many times a second (cursor
moves, broadcast events): the first call checks the policy, later ones cost a dict lookup."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.auth.policy import Action
from app.errors import Forbidden, NotFound
from app.graphql.context import Context
from app.rooms.cache import RoomSnapshot
from app.rooms.models import RoomStatus

T = TypeVar("T")


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
    return await memoized(context, (room_id, action), lambda: _check(context, room_id, action))


class _Memo:
    """One memoized answer (or the check still running), and the access epoch it was asked in."""

    __slots__ = ("answer", "epoch")

    def __init__(self, epoch: int, answer: Any) -> None:
        self.epoch = epoch
        self.answer = answer


async def memoized(context: Context, key: Hashable, check: Callable[[], Awaitable[T]]) -> T:
    """The answer of `check` for this connection, asked once per access epoch (a change of
    rights anywhere makes it ask again, see app/realtime/access_epoch.py). Calls that arrive
    while the first check runs wait for it and resume in arrival order, so a burst of cursor
    moves is applied in the order it was sent. A refusal is not remembered."""
    epoch = context.state.access_epoch.value
    memo = context.room_tickets.get(key)
    if memo is not None and memo.epoch == epoch:
        if not isinstance(memo.answer, asyncio.Future):
            return memo.answer  # type: ignore[no-any-return]
        pending = memo.answer
    else:
        pending = asyncio.ensure_future(check())
        memo = context.room_tickets[key] = _Memo(epoch, pending)
    try:
        answer: T = await asyncio.shield(pending)
    except Exception:
        if context.room_tickets.get(key) is memo:
            del context.room_tickets[key]
        raise
    if context.room_tickets.get(key) is memo:
        memo.answer = answer  # the answer itself, not the finished task; still of its epoch
    return answer


async def _check(context: Context, room_id: uuid.UUID, action: Action) -> RoomTicket:
    room = await load_room(context, room_id)
    await context.policy.room(room, action)
    if room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    return RoomTicket(room_id=str(room.id), cursor_tick_s=room.cursor_tick_ms / 1000, features=room.features)
