"""Live cursors (FR-5): `moveCursor` over the connection, `cursors` batched per room tick."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.cursors.feed import CursorState
from app.errors import BadRequest, ValidationFailed
from app.graphql.context import Context, Info
from app.graphql.ws.fast import FastMutation, FastSubscription, unserved
from app.presence.identity import presence_identity
from app.realtime.room_access import RoomTicket, room_ticket
from app.realtime.stream import Stream

MAX_SELECTION_BYTES = 2048
ONLY_OVER_WEBSOCKET = "cursors run over the WebSocket connection (graphql-transport-ws)"


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
    full: bool = strawberry.field(
        description="This batch is the whole state (the first one, or after falling behind): "
        "cursors it does not list are gone."
    )


def _small_map(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_SELECTION_BYTES:
        raise ValidationFailed(
            f"{field} must be a JSON object under {MAX_SELECTION_BYTES} bytes", field=field
        )
    return value


async def move_cursor(context: Context, arguments: dict[str, Any]) -> bool:
    """Arguments by GraphQL name: roomId, x, y, elementId, offset, selection."""
    if context.websocket_or_none is None:
        raise BadRequest(ONLY_OVER_WEBSOCKET)
    ticket = await room_ticket(context, arguments["roomId"], Action.PRESENCE_WRITE)
    context.spend("moves")
    if "cursors" not in ticket.features:
        raise BadRequest("cursors are turned off in this room")
    user_id, user_info = presence_identity(context.principal)
    context.state.cursors.move(
        ticket.room_id,
        ticket.cursor_tick_s,
        CursorState(
            connection_id=context.connection_id,
            user_id=user_id,
            info=user_info,
            x=arguments.get("x"),
            y=arguments.get("y"),
            element_id=arguments.get("elementId"),
            offset=_small_map(arguments.get("offset"), "offset"),
            selection=_small_map(arguments.get("selection"), "selection"),
            moved_at=time.time(),
        ),
    )
    if context.cursor_rooms is None:
        context.cursor_rooms = set()
    context.cursor_rooms.add(ticket.room_id)
    # Best effort while the pub/sub transport is down: this process's subscribers get the move,
    # the other processes' do not (false says so).
    return context.state.hub.available


async def authorize_cursors(context: Context, arguments: dict[str, Any]) -> RoomTicket:
    return await room_ticket(context, arguments["roomId"], Action.PRESENCE_READ)


async def open_cursors(context: Context, arguments: dict[str, Any], stream: Stream) -> None:
    ticket = await authorize_cursors(context, arguments)
    stream.key = context.connection_id
    await context.state.cursors.subscribe(ticket.room_id, ticket.cursor_tick_s, stream)


FAST_FIELDS = (
    FastMutation("moveCursor", move_cursor, counts_as_request=False),
    FastSubscription("cursors", "CursorBatch", open_cursors, authorize_cursors, splice=("cursors",)),
)


@strawberry.type
class CursorsMutation:
    @strawberry.mutation(
        description="Move this connection's cursor (sent on the WebSocket; cheap). True when the "
        "move reaches every process; false while the pub/sub transport (Redis) is down and it "
        "reaches only the subscribers connected to this process."
    )
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
        arguments = {"roomId": room_id, "x": x, "y": y, "elementId": element_id}
        return await move_cursor(info.context, {**arguments, "offset": offset, "selection": selection})


@strawberry.type
class CursorsSubscription:
    @strawberry.subscription(
        description="Others' cursors: at most one batch per room tick. The first batch is the "
        "whole state (`full`)."
    )
    async def cursors(self, info: Info, room_id: uuid.UUID) -> AsyncGenerator[CursorBatch, None]:
        raise unserved(info.context, ONLY_OVER_WEBSOCKET)
        yield  # an async generator, for the schema  # pragma: no cover
