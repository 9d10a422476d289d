"""Application-defined ephemeral room events: `broadcastEvent` and `roomEvents` (sender excluded)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.errors import SubscriberLagging, ValidationFailed
from app.graphql.context import Info
from app.presence.identity import presence_identity
from app.realtime.redis_backend import RESYNC
from app.realtime.room_access import room_ticket

MAX_EVENT_BYTES = 16_384


def channel(room_id: str) -> str:
    return f"events:{room_id}"


@strawberry.type
class RoomEvent:
    type: str
    payload: JSON
    user_id: str
    sender_connection_id: str | None
    sent_at: float = strawberry.field(description="Server time, epoch seconds.")


@strawberry.type
class BroadcastMutation:
    @strawberry.mutation(description="Send an ephemeral event to everyone else subscribed to the room.")
    async def broadcast_event(self, info: Info, room_id: uuid.UUID, type: str, payload: JSON) -> bool:
        ticket = await room_ticket(info, room_id, Action.PRESENCE_WRITE)
        if not 1 <= len(type) <= 100:
            raise ValidationFailed("type must be 1 to 100 characters", field="type")
        user_id, _ = presence_identity(info.context.principal)
        sender = info.context.connection_id if info.context.websocket_or_none is not None else None
        message = json.dumps(
            {
                "type": type,
                "payload": payload,
                "user_id": user_id,
                "sender_connection_id": sender,
                "sent_at": time.time(),
            },
            separators=(",", ":"),
        )
        if len(message) > MAX_EVENT_BYTES:
            raise ValidationFailed(f"the event must be at most {MAX_EVENT_BYTES} bytes", field="payload")
        await info.context.state.hub.publish(channel(ticket.room_id), message)
        return True


@strawberry.type
class BroadcastSubscription:
    @strawberry.subscription(description="Events others broadcast in the room (not your own).")
    async def room_events(self, info: Info, room_id: uuid.UUID) -> AsyncGenerator[RoomEvent, None]:
        ticket = await room_ticket(info, room_id, Action.PRESENCE_READ)
        own = info.context.connection_id
        async with info.context.state.hub.subscribe(channel(ticket.room_id)) as mailbox:
            async for message in mailbox:
                if message == RESYNC:
                    if mailbox.overflows:
                        # Events cannot be coalesced or replayed: say so rather than skip silently.
                        raise SubscriberLagging(
                            "this subscription fell behind and missed events; resubscribe"
                        )
                    continue  # a Redis reconnect: ephemeral events are not replayed
                event = json.loads(message)
                if event["sender_connection_id"] != own:
                    yield RoomEvent(**event)
