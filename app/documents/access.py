"""Authorization of document operations: the room's read or write permission, through the policy.

A document belongs to one room; reading it needs the room's documents:read (an end-user token's
`read` grant), changing it documents:write (`write`). Writes also need the room to be active.
On a WebSocket the answer is memoized per connection, like room tickets, because updates arrive
many times a second; trashing a document ends its subscriptions and refuses later writes in the
database itself (append_update checks the row).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.auth.policy import Action
from app.documents.models import Document
from app.errors import Forbidden, NotFound
from app.graphql.context import Context
from app.realtime.room_access import load_room, memoized
from app.rooms.models import RoomStatus


@dataclass(frozen=True)
class DocumentTicket:
    document_id: str
    room_id: uuid.UUID
    tick_s: float  # the room's cursor tick: awareness is batched at the same pace


async def document_ticket(context: Context, document_id: uuid.UUID, action: Action) -> DocumentTicket:
    if context.websocket_or_none is None:
        return await _check(context, document_id, action)
    key = ("document", document_id, action)
    return await memoized(context, key, lambda: _check(context, document_id, action))


async def _check(context: Context, document_id: uuid.UUID, action: Action) -> DocumentTicket:
    async with context.session() as session:
        row = (
            await session.execute(
                select(Document.room_id, Document.deleted_at).where(Document.id == document_id)
            )
        ).one_or_none()
    if row is None or row.deleted_at is not None:
        raise NotFound("document")
    try:
        room = await load_room(context, row.room_id)
        await context.policy.room(room, action)
    except NotFound:
        raise NotFound("document") from None
    if action == Action.DOCUMENTS_WRITE and room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    return DocumentTicket(str(document_id), row.room_id, room.cursor_tick_ms / 1000)
