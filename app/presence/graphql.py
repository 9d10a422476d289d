"""Presence (FR-4) over graphql-transport-ws.

Joining is a subscription: `roomPresence` makes the connection present until it ends. The first
event is the full state (SYNC); then DIFF events with joins, leaves and updates. The room's feed
(feed.py) renders them once for all local subscribers.
"""

from __future__ import annotations

import asyncio
import enum
import json
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.auth.principal import Developer, EndUserClient
from app.errors import BadRequest, RoomFull, ValidationFailed
from app.graphql.context import Context, Info
from app.graphql.ws.fast import FastMutation, FastSubscription, unserved
from app.presence.feed import PresenceFeed
from app.presence.identity import presence_identity
from app.presence.recorder import Who
from app.presence.service import PresenceService
from app.realtime.room_access import load_room, room_ticket
from app.realtime.stream import Stream
from app.rooms.access import authorize_join, room_is_full
from app.rooms.cache import RoomSnapshot

MAX_PRESENCE_BYTES = 4096


@strawberry.enum
class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"


@strawberry.enum
class PresenceEventKind(enum.Enum):
    SYNC = "sync"
    DIFF = "diff"


@strawberry.type
class PresenceConnection:
    connection_id: str = strawberry.field(description="Stable across a reconnect in the grace period.")
    status: PresenceStatus
    presence: JSON
    joined_at: datetime


@strawberry.type
class PresenceUser:
    user_id: str
    info: JSON
    connections: list[PresenceConnection]


@strawberry.type
class PresenceEvent:
    kind: PresenceEventKind
    connection_id: str | None = strawberry.field(
        default=None,
        description="Your own connection's id in this room (SYNC events; null in diffs): "
        "find yourself in `users`.",
    )
    users: list[PresenceUser] = strawberry.field(description="The full state (SYNC events only).")
    joins: list[PresenceUser]
    leaves: list[PresenceUser]
    updates: list[PresenceUser]


def _json_map(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be a JSON object", field=field)
    if len(json.dumps(value)) > MAX_PRESENCE_BYTES:
        raise ValidationFailed(f"{field} must be at most {MAX_PRESENCE_BYTES} bytes", field=field)
    return value


class Joined:
    """This connection's presence in one room, and how it ends (the stream's on_end)."""

    __slots__ = ("context", "entry_id", "feed", "left", "participant_id", "room_id", "stream", "who")

    def __init__(
        self,
        context: Context,
        room_id: uuid.UUID,
        entry_id: str,
        stream: Stream,
        feed: PresenceFeed,
        *,
        metadata: dict[str, Any],
        resumed: bool,
    ) -> None:
        self.context = context
        self.room_id = room_id
        self.entry_id = entry_id
        self.stream = stream
        self.feed = feed
        self.left = False  # leaveRoom ran: the leave is published already
        self.who = _who(context)
        self.participant_id = context.state.recorder.connected(
            room_id, context.connection_id, self.who, metadata, resumed=resumed
        )

    async def end(self, dropped: bool) -> None:
        context, room_key = self.context, str(self.room_id)
        self.feed.remove(self.stream)
        context.state.recorder.disconnected(
            self.room_id, self.participant_id, context.connection_id, self.who
        )
        if context.presence.get(room_key) is self:
            del context.presence[room_key]
        service: PresenceService = context.state.presence
        try:
            if not self.left:
                await service.leave(room_key, self.entry_id, dropped=dropped)
        finally:
            await service.feeds.release(room_key)


def _who(context: Context) -> Who:
    principal = context.principal
    client = context.client
    return Who(
        user_id=principal.user_id if isinstance(principal, Developer) else None,
        end_user_id=principal.end_user_id if isinstance(principal, EndUserClient) else None,
        ip=client.ip,
        user_agent=client.user_agent,
    )


async def authorize_presence(context: Context, arguments: dict[str, Any]) -> RoomSnapshot:
    """May this connection be present in the room (with the password it gave)? A password
    already checked against the room's current hash is not checked again (argon2 is slow)."""
    room = await load_room(context, arguments["roomId"])
    await authorize_join(context.policy, room, arguments.get("password"), proven=context.room_tickets)
    return room


async def open_room_presence(context: Context, arguments: dict[str, Any], stream: Stream) -> None:
    """roomPresence: authorize, join, SYNC; on the stream's end, leave (after the grace period
    if the connection dropped)."""
    websocket = context.websocket
    metadata = _json_map(arguments.get("presence"), "presence")
    room = await authorize_presence(context, arguments)
    room_key = str(room.id)
    if room_key in context.presence:
        raise BadRequest("this connection is already present in the room")
    service: PresenceService = context.state.presence
    user_id, user_info = presence_identity(context.principal)
    if context.keepalive is not None:  # keep answering pings more often than the room's TTL
        context.keepalive.at_most(room.presence_ttl_s / 3)
    feed = await service.feeds.acquire(room_key)
    try:
        if room_is_full(await service.count_for_join(room_key, user_id), room):
            raise RoomFull(f"the room is full ({room.max_participants} participants)")
        entry, resumed = await service.join(
            room_key,
            user_id=user_id,
            info=user_info,
            status=arguments["status"].value,
            presence=metadata,
            ttl_s=room.presence_ttl_s,
            activity=websocket.state,
        )
    except BaseException:
        await service.feeds.release(room_key)
        raise
    joined = context.presence[room_key] = Joined(
        context, room.id, entry.entry_id, stream, feed, metadata=metadata, resumed=resumed
    )
    stream.key = user_id if arguments["others"] else None
    feed.add(stream, entry.entry_id)
    stream.on_end = joined.end


async def update_presence(context: Context, arguments: dict[str, Any]) -> bool:
    # Memoized per connection: refused as soon as the right to be present is taken away.
    await room_ticket(context, arguments["roomId"], Action.PRESENCE_WRITE)
    joined = _joined(context, arguments["roomId"])
    context.spend("presence updates")
    status = arguments.get("status")
    presence = arguments.get("presence", strawberry.UNSET)
    await context.state.presence.update(
        str(arguments["roomId"]),
        joined.entry_id,
        status=status.value if status is not None else None,
        presence=_json_map(presence, "presence") if presence is not strawberry.UNSET else None,
    )
    return True


async def leave_room(context: Context, arguments: dict[str, Any]) -> bool:
    joined = _joined(context, arguments["roomId"])
    joined.left = True
    joined.feed.remove(joined.stream)  # the leaver hears neither its own leave nor anything after
    await context.state.presence.leave(str(arguments["roomId"]), joined.entry_id, dropped=False)
    # roomPresence completes just after this mutation's own answer is sent.
    asyncio.get_running_loop().call_soon(joined.stream.finish)
    return True


def _joined(context: Context, room_id: uuid.UUID) -> Joined:
    context.websocket  # noqa: B018  (raises BAD_REQUEST over HTTP)
    joined = context.presence.get(str(room_id))
    if joined is None:
        raise BadRequest("join the room with roomPresence on this connection first")
    return joined  # type: ignore[no-any-return]


FAST_FIELDS = (
    FastSubscription(
        "roomPresence",
        "PresenceEvent",
        open_room_presence,
        authorize_presence,
        splice=("users", "joins", "leaves", "updates"),
    ),
    FastMutation("updatePresence", update_presence, counts_as_request=False),
    FastMutation("leaveRoom", leave_room),
)


@strawberry.type
class PresenceSubscription:
    @strawberry.subscription(
        description="Be present in a room while subscribed. First the full state (SYNC), then diffs."
    )
    async def room_presence(
        self,
        info: Info,
        room_id: uuid.UUID,
        presence: JSON | None = None,
        status: PresenceStatus = PresenceStatus.ONLINE,
        password: str | None = None,
        others: Annotated[bool, strawberry.argument(description="Leave yourself out of events.")] = False,
    ) -> AsyncGenerator[PresenceEvent, None]:
        raise unserved(info.context, ONLY_OVER_WEBSOCKET)
        yield  # an async generator, for the schema  # pragma: no cover


@strawberry.type
class PresenceMutation:
    @strawberry.mutation(description="Change this connection's status or presence metadata in a room.")
    async def update_presence(
        self,
        info: Info,
        room_id: uuid.UUID,
        presence: JSON | None = strawberry.UNSET,
        status: PresenceStatus | None = strawberry.UNSET,
    ) -> bool:
        arguments: dict[str, Any] = {"roomId": room_id}
        if presence is not strawberry.UNSET:
            arguments["presence"] = presence
        if status not in (None, strawberry.UNSET):
            arguments["status"] = status
        return await update_presence(info.context, arguments)

    @strawberry.mutation(description="Leave a room now (others see the leave at once) and end roomPresence.")
    async def leave_room(self, info: Info, room_id: uuid.UUID) -> bool:
        return await leave_room(info.context, {"roomId": room_id})


ONLY_OVER_WEBSOCKET = "presence runs over the WebSocket connection (graphql-transport-ws)"
