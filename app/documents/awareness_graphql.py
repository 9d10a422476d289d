"""GraphQL of awareness: `updateAwareness` and the `documentAwareness` subscription (hot fields)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from app.auth.policy import Action
from app.documents import yjs
from app.documents.access import DocumentTicket, document_ticket
from app.documents.awareness import AwarenessFeed
from app.errors import BadRequest
from app.graphql.context import Context, Info
from app.graphql.ws.fast import FastMutation, FastSubscription, unserved
from app.realtime.feeds import Feeds
from app.realtime.stream import Stream

ONLY_OVER_WEBSOCKET = "awareness runs over the WebSocket connection (graphql-transport-ws)"
MAX_UPDATE_BYTES = 64 << 10


@strawberry.type(name="AwarenessUpdate")
class AwarenessUpdateType:
    document_id: uuid.UUID
    update: str = strawberry.field(description="Base64 y-protocols awareness update.")
    full: bool = strawberry.field(description="Every known client's state (the first message).")


async def authorize_awareness(context: Context, arguments: dict[str, Any]) -> DocumentTicket:
    return await document_ticket(context, arguments["documentId"], Action.DOCUMENTS_READ)


async def _feed(context: Context, document_id: uuid.UUID) -> tuple[Feeds[AwarenessFeed], AwarenessFeed]:
    ticket = await authorize_awareness(context, {"documentId": document_id})
    feeds = context.state.awareness
    feed = await feeds.acquire(ticket.document_id)
    feed.tick_s = ticket.tick_s
    feed.room_id = str(ticket.room_id)
    return feeds, feed


async def update_awareness(context: Context, document_id: uuid.UUID, update: str) -> bool:
    """This connection's awareness states change (or are removed). They are removed for everyone
    when the connection ends."""
    if context.websocket_or_none is None:  # over HTTP nothing would ever remove the state
        raise BadRequest(ONLY_OVER_WEBSOCKET)
    raw = yjs.decode_base64(update, field="update", max_bytes=MAX_UPDATE_BYTES)
    # Memoized per connection: refused as soon as the right to read the document is taken away.
    await authorize_awareness(context, {"documentId": document_id})
    context.spend("awareness updates")
    held = context.awareness_documents
    key = str(document_id)
    feed = context.state.awareness.get(key) if key in held else None
    if feed is None:
        _, feed = await _feed(context, document_id)
        if key in held:
            await context.state.awareness.release(key)  # acquired twice by concurrent calls
        held.add(key)
    feed.update(context.connection_id, raw)
    return True


async def connection_ended(context: Context) -> None:
    feeds = context.state.awareness
    for key in context.awareness_documents:
        feed = feeds.get(key)
        if feed is not None:
            feed.connection_ended(context.connection_id)
            feed.flush()
        await feeds.release(key)
    context.awareness_documents.clear()


async def open_document_awareness(context: Context, arguments: dict[str, Any], stream: Stream) -> None:
    feeds, feed = await _feed(context, arguments["documentId"])
    stream.view = feed
    stream.on_resync = _send_full
    stream.on_end = _Release(feeds, feed, stream).run
    _send_full(stream)
    feed.audience.add(stream)


def _send_full(stream: Stream) -> None:
    full = stream.view.full_event()
    if full is not None:
        stream.send(stream.renderer.render(full))


class _Release:
    __slots__ = ("feed", "feeds", "stream")

    def __init__(self, feeds: Feeds[AwarenessFeed], feed: AwarenessFeed, stream: Stream) -> None:
        self.feeds = feeds
        self.feed = feed
        self.stream = stream

    async def run(self, dropped: bool) -> None:
        self.feed.audience.remove(self.stream)
        await self.feeds.release(self.feed.document_id)


FAST_FIELDS = (
    FastMutation(
        "updateAwareness",
        lambda context, a: update_awareness(context, a["documentId"], a["update"]),
        counts_as_request=False,
    ),
    FastSubscription("documentAwareness", "AwarenessUpdate", open_document_awareness, authorize_awareness),
)


@strawberry.type
class AwarenessMutation:
    @strawberry.mutation(
        description="Set this connection's awareness (y-protocols update, base64): cursor, "
        "selection, user. Batched per tick; removed for everyone when the connection ends."
    )
    async def update_awareness(self, info: Info, document_id: uuid.UUID, update: str) -> bool:
        return await update_awareness(info.context, document_id, update)


@strawberry.type
class AwarenessSubscription:
    @strawberry.subscription(description="Awareness of a document: at most one update per tick.")
    async def document_awareness(
        self, info: Info, document_id: uuid.UUID
    ) -> AsyncGenerator[AwarenessUpdateType, None]:
        raise unserved(info.context, ONLY_OVER_WEBSOCKET)
        yield  # an async generator, for the schema  # pragma: no cover
