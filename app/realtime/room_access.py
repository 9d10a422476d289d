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
from app.realtime.access_epoch import AccessEpoch
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
    """One memoized answer (or the check still running), and the access epochs it holds for:
    the process's, and its room's (-1: some room changed while it was checked)."""

    __slots__ = ("answer", "epoch", "room", "room_changes", "room_epoch")

    def __init__(self, epochs: AccessEpoch, pending: asyncio.Future[Any]) -> None:
        self.epoch = epochs.value
        self.room_changes = epochs.room_changes  # when the check began
        self.answer: Any = pending
        self.room: str | None = None  # known once answered
        self.room_epoch = 0

    def holds(self, epochs: AccessEpoch) -> bool:
        if self.epoch != epochs.value:
            return False
        return self.room is None or self.room_epoch == epochs.rooms.get(self.room, 0)


async def memoized(context: Context, key: Hashable, check: Callable[[], Awaitable[T]]) -> T:
    """The answer of `check` for this connection, asked once as long as no right it depends on
    changes (a change anywhere makes it ask again, see app/realtime/access_epoch.py). Calls that
    arrive while the first check runs wait for it and resume in arrival order, so a burst of
    cursor moves is applied in the order it was sent. A refusal is not remembered."""
    epochs = context.state.access_epoch
    memo = context.room_tickets.get(key)
    if memo is not None and memo.holds(epochs):
        if not isinstance(memo.answer, asyncio.Future):
            return memo.answer  # type: ignore[no-any-return]
        pending = memo.answer
    else:
        pending = asyncio.ensure_future(check())
        memo = context.room_tickets[key] = _Memo(epochs, pending)
    try:
        answer: T = await asyncio.shield(pending)
    except Exception:
        if context.room_tickets.get(key) is memo:
            del context.room_tickets[key]
        raise
    if context.room_tickets.get(key) is memo and isinstance(memo.answer, asyncio.Future):
        room = str(answer.room_id)  # type: ignore[attr-defined]  (every ticket names its room)
        memo.answer, memo.room = answer, room  # the answer itself, not the finished task
        memo.room_epoch = -1 if memo.room_changes != epochs.room_changes else epochs.rooms.get(room, 0)
    return answer


async def _check(context: Context, room_id: uuid.UUID, action: Action) -> RoomTicket:
    room = await load_room(context, room_id)
    await context.policy.room(room, action)
    if room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    return RoomTicket(room_id=str(room.id), cursor_tick_s=room.cursor_tick_ms / 1000, features=room.features)
