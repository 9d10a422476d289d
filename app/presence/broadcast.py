"""Application-defined ephemeral room events: `broadcastEvent` and `roomEvents` (sender excluded).

Events are not batched: each is published once, reaches each process once, is rendered once per
distinct subscription document and written to every local subscriber but its sender. A
subscriber that falls so far behind that its frames are dropped is ended with SUBSCRIBER_LAGGING:
events cannot be coalesced or replayed, and skipping them silently would be worse.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import asdict
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.errors import SubscriberLagging, Unavailable, ValidationFailed
from app.graphql.context import Context, Info
from app.graphql.ws.fast import FastMutation, FastSubscription, unserved
from app.presence.event_feed import RoomEventData, RoomEventFeed, channel
from app.presence.identity import presence_identity
from app.realtime.feeds import Feeds
from app.realtime.room_access import RoomTicket, room_ticket
from app.realtime.stream import Stream

MAX_EVENT_BYTES = 16_384


@strawberry.type
class RoomEvent:
    type: str
    payload: JSON
    user_id: str
    sender_connection_id: str | None
    sent_at: float = strawberry.field(description="Server time, epoch seconds.")


async def broadcast_event(context: Context, room_id: uuid.UUID, type: str, payload: Any) -> bool:
    ticket = await room_ticket(context, room_id, Action.PRESENCE_WRITE)
    context.spend("broadcasts")
    if not 1 <= len(type) <= 100:
        raise ValidationFailed("type must be 1 to 100 characters", field="type")
    user_id, _ = presence_identity(context.principal)
    sender = context.connection_id if context.websocket_or_none is not None else None
    event = RoomEventData(type, payload, user_id, sender, time.time())
    message = json.dumps(asdict(event), separators=(",", ":"))
    if len(message) > MAX_EVENT_BYTES:
        raise ValidationFailed(f"the event must be at most {MAX_EVENT_BYTES} bytes", field="payload")
    if not await context.state.hub.publish(channel(ticket.room_id), message):
        raise Unavailable("the realtime transport is down: the event was not delivered; retry")
    return True


async def authorize_room_events(context: Context, arguments: dict[str, Any]) -> RoomTicket:
    return await room_ticket(context, arguments["roomId"], Action.PRESENCE_READ)


async def open_room_events(context: Context, arguments: dict[str, Any], stream: Stream) -> None:
    ticket = await authorize_room_events(context, arguments)
    feeds = context.state.event_feeds
    feed = await feeds.acquire(ticket.room_id)
    stream.key = context.connection_id
    stream.on_resync = _end_lagging
    feed.audience.add(stream)
    stream.view = ticket.room_id
    stream.on_end = _Leave(feeds, feed, stream).run


class _Leave:
    """A stream's on_end (a bound method: no closure per subscription)."""

    __slots__ = ("feed", "feeds", "stream")

    def __init__(self, feeds: Feeds[RoomEventFeed], feed: RoomEventFeed, stream: Stream) -> None:
        self.feeds = feeds
        self.feed = feed
        self.stream = stream

    async def run(self, dropped: bool) -> None:
        self.feed.audience.remove(self.stream)
        await self.feeds.release(self.stream.view)


def _end_lagging(stream: Stream) -> None:
    stream.fail(SubscriberLagging("this subscription fell behind and missed events; resubscribe"))


FAST_FIELDS = (
    FastMutation(
        "broadcastEvent",
        lambda context, a: broadcast_event(context, a["roomId"], a["type"], a["payload"]),
    ),
    FastSubscription("roomEvents", "RoomEvent", open_room_events, authorize_room_events),
)


@strawberry.type
class BroadcastMutation:
    @strawberry.mutation(description="Send an ephemeral event to everyone else subscribed to the room.")
    async def broadcast_event(self, info: Info, room_id: uuid.UUID, type: str, payload: JSON) -> bool:
        return await broadcast_event(info.context, room_id, type, payload)


@strawberry.type
class BroadcastSubscription:
    @strawberry.subscription(description="Events others broadcast in the room (not your own).")
    async def room_events(self, info: Info, room_id: uuid.UUID) -> AsyncGenerator[RoomEvent, None]:
        raise unserved(info.context, ONLY_OVER_WEBSOCKET)
        yield  # an async generator, for the schema  # pragma: no cover


ONLY_OVER_WEBSOCKET = "this subscription runs over the WebSocket connection (graphql-transport-ws)"
