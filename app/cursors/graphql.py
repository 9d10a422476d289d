"""Live cursors (FR-5): `moveCursor` over the connection, `cursors` batched per room tick."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.cursors import batcher as cursors
from app.errors import BadRequest, ValidationFailed
from app.graphql.context import Info
from app.presence.identity import presence_identity
from app.realtime.redis_backend import RESYNC
from app.realtime.room_access import room_ticket

MAX_SELECTION_BYTES = 2048


@strawberry.type
class Cursor:
    connection_id: str
    user_id: str
    info: JSON
    x: float | None
    y: float | None
    element_id: str | None = strawberry.field(description="Position relative to this element, if any.")
    offset: JSON | None
    selection: JSON | None
    idle: bool
    moved_at: float = strawberry.field(description="Server time of the move, in epoch seconds.")


@strawberry.type
class CursorBatch:
    cursors: list[Cursor] = strawberry.field(description="Cursors that changed since the last batch.")
    removed: list[str] = strawberry.field(description="Connections whose cursor is gone.")


def _cursor(data: dict[str, Any]) -> Cursor:
    return Cursor(**data)


def _small_map(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(str(value)) > MAX_SELECTION_BYTES:
        raise ValidationFailed(
            f"{field} must be a JSON object under {MAX_SELECTION_BYTES} bytes", field=field
        )
    return value


@strawberry.type
class CursorsMutation:
    @strawberry.mutation(description="Move this connection's cursor (sent on the WebSocket; cheap).")
    async def move_cursor(
        self,
        info: Info,
        room_id: uuid.UUID,
        x: float | None = None,
        y: float | None = None,
        element_id: str | None = None,
        offset: JSON | None = None,
        selection: JSON | None = None,
    ) -> bool:
        context = info.context
        if context.websocket_or_none is None:
            raise BadRequest("moveCursor runs over the WebSocket connection (graphql-transport-ws)")
        ticket = await room_ticket(info, room_id, Action.PRESENCE_WRITE)
        if "cursors" not in ticket.features:
            raise BadRequest("cursors are turned off in this room")
        user_id, user_info = presence_identity(context.principal)
        batcher: cursors.CursorBatcher = context.state.cursors
        batcher.move(
            ticket.room_id,
            ticket.cursor_tick_s,
            cursors.CursorState(
                connection_id=context.connection_id,
                user_id=user_id,
                info=user_info,
                x=x,
                y=y,
                element_id=element_id,
                offset=_small_map(offset, "offset"),
                selection=_small_map(selection, "selection"),
                moved_at=time.time(),
            ),
        )
        context.cursor_rooms.add(ticket.room_id)
        return True


@strawberry.type
class CursorsSubscription:
    @strawberry.subscription(description="Others' cursors: at most one batch per room tick.")
    async def cursors(self, info: Info, room_id: uuid.UUID) -> AsyncGenerator[CursorBatch, None]:
        context = info.context
        ticket = await room_ticket(info, room_id, Action.PRESENCE_READ)
        own = context.connection_id
        async with context.state.hub.subscribe(cursors.channel(ticket.room_id)) as mailbox:
            while True:
                pending = [await mailbox.get()]
                # Whatever else arrives before the tick ends (other processes' batches) merges in.
                await asyncio.sleep(ticket.cursor_tick_s)
                pending += mailbox.drain()
                latest, removed = cursors.merge([m for m in pending if m != RESYNC])
                latest.pop(own, None)
                removed.discard(own)
                if latest or removed:
                    yield CursorBatch(cursors=[_cursor(c) for c in latest.values()], removed=sorted(removed))
