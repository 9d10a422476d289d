"""Presence (FR-4) and room broadcast events, over graphql-transport-ws.

Joining is a subscription: `roomPresence` makes the connection present until it ends. The first
event is the full state (SYNC); then DIFF events with joins, leaves and updates.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from starlette.websockets import WebSocketState
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.auth.principal import Developer, EndUserClient
from app.errors import BadRequest, NotFound, RoomFull, ValidationFailed
from app.graphql.context import Info
from app.graphql.view import set_keepalive
from app.presence import service as presence_service
from app.presence.identity import presence_identity
from app.presence.recorder import PresenceRecorder, Who
from app.realtime.hub import Subscriber
from app.realtime.presence_registry import PresenceEntry
from app.realtime.redis_backend import RESYNC
from app.rooms.access import authorize_join, room_is_full
from app.rooms.models import Room

MAX_PRESENCE_BYTES = 4096
LEFT = "\x00left"  # offered to the subscription's own mailbox by leaveRoom


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
    users: list[PresenceUser] = strawberry.field(description="The full state (SYNC events only).")
    joins: list[PresenceUser]
    leaves: list[PresenceUser]
    updates: list[PresenceUser]


def _group(entries: list[PresenceEntry]) -> list[PresenceUser]:
    users: dict[str, PresenceUser] = {}
    for entry in sorted(entries, key=lambda e: (e.joined_at, e.entry_id)):
        user = users.get(entry.user_id)
        if user is None:
            user = users[entry.user_id] = PresenceUser(user_id=entry.user_id, info=entry.info, connections=[])
        user.connections.append(
            PresenceConnection(
                connection_id=entry.entry_id,
                status=PresenceStatus(entry.status),
                presence=entry.presence,
                joined_at=datetime.fromtimestamp(entry.joined_at, UTC),
            )
        )
    return list(users.values())


def _visible(entry: PresenceEntry) -> tuple[str, str, dict[str, Any]]:
    """What others see of an entry: a message changing none of it is not news."""
    return entry.status, json.dumps(entry.presence, sort_keys=True), entry.info


def _sync(entries: list[PresenceEntry]) -> PresenceEvent:
    return PresenceEvent(kind=PresenceEventKind.SYNC, users=_group(entries), joins=[], leaves=[], updates=[])


def _json_map(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be a JSON object", field=field)
    if len(json.dumps(value)) > MAX_PRESENCE_BYTES:
        raise ValidationFailed(f"{field} must be at most {MAX_PRESENCE_BYTES} bytes", field=field)
    return value


async def load_room(info: Info, room_id: uuid.UUID, action: Action) -> Room:
    async with info.context.session() as session:
        room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("room")
    await info.context.policy.room(room, action)
    return room


@dataclass
class Joined:
    """This connection's presence in one room."""

    entry_id: str
    mailbox: Subscriber
    left: bool = False


def _who(context: Any) -> Who:
    principal = context.principal
    client = context.client
    return Who(
        user_id=principal.user_id if isinstance(principal, Developer) else None,
        end_user_id=principal.end_user_id if isinstance(principal, EndUserClient) else None,
        ip=client.ip,
        user_agent=client.user_agent,
    )


def _activity(websocket: Any) -> Any:
    return lambda: getattr(websocket.state, "last_activity", time.time())


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
        context = info.context
        websocket = context.websocket
        metadata = _json_map(presence, "presence")
        async with context.session() as session:
            room = await session.get(Room, room_id)
        if room is None:
            raise NotFound("room")
        await authorize_join(context.policy, room, password)
        room_key = str(room.id)
        if room_key in context.presence:
            raise BadRequest("this connection is already present in the room")
        service: presence_service.PresenceService = context.state.presence
        user_id, user_info = presence_identity(context.principal)
        # Keep answering the server's pings more often than the room's TTL.
        set_keepalive(websocket, room.presence_ttl_s / 3)
        async with context.state.hub.subscribe(presence_service.channel(room_key)) as mailbox:
            if room_is_full(await service.count(room_key), room):
                raise RoomFull(f"the room is full ({room.max_participants} participants)")
            entry, resumed = await service.join(
                room_key,
                user_id=user_id,
                info=user_info,
                status=status.value,
                presence=metadata,
                ttl_s=room.presence_ttl_s,
                last_activity=_activity(websocket),
            )
            joined = context.presence[room_key] = Joined(entry.entry_id, mailbox)
            who = _who(context)
            recorder: PresenceRecorder = context.state.recorder
            participant_id = recorder.connected(
                room.id, context.connection_id, who, metadata, resumed=resumed
            )
            skip_user = user_id if others else None
            try:
                state = await service.entries(room_key)
                known = {e.entry_id: _visible(e) for e in state}
                yield _sync([e for e in state if e.user_id != skip_user])
                while True:
                    message = await mailbox.get()
                    if message == LEFT:
                        return
                    if message == RESYNC:
                        state = await service.entries(room_key)
                        known = {e.entry_id: _visible(e) for e in state}
                        yield _sync([e for e in state if e.user_id != skip_user])
                        continue
                    op, changed = presence_service.decode(message)
                    if changed.entry_id == joined.entry_id and op == "leave":
                        return  # we were reaped (connection silent for longer than the TTL)
                    # The SYNC may already hold what a message announces (it raced the snapshot).
                    before = known.get(changed.entry_id)
                    if op == "leave":
                        if before is None:
                            continue
                        del known[changed.entry_id]
                    else:
                        if before == _visible(changed):
                            continue
                        op = "update" if before is not None else "join"
                        known[changed.entry_id] = _visible(changed)
                    if changed.user_id == skip_user:
                        continue
                    group = _group([changed])
                    yield PresenceEvent(
                        kind=PresenceEventKind.DIFF,
                        users=[],
                        joins=group if op == "join" else [],
                        leaves=group if op == "leave" else [],
                        updates=group if op == "update" else [],
                    )
            finally:
                recorder.disconnected(room.id, participant_id, context.connection_id, who)
                context.presence.pop(room_key, None)
                if not joined.left:
                    dropped = websocket.application_state == WebSocketState.DISCONNECTED or (
                        websocket.client_state == WebSocketState.DISCONNECTED
                    )
                    await service.leave(room_key, joined.entry_id, dropped=dropped)


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
        joined = _joined(info, room_id)
        service: presence_service.PresenceService = info.context.state.presence
        await service.update(
            str(room_id),
            joined.entry_id,
            status=status.value if status not in (None, strawberry.UNSET) else None,  # type: ignore[union-attr]
            presence=_json_map(presence, "presence") if presence is not strawberry.UNSET else None,
        )
        return True

    @strawberry.mutation(description="Leave a room now (others see the leave at once) and end roomPresence.")
    async def leave_room(self, info: Info, room_id: uuid.UUID) -> bool:
        joined = _joined(info, room_id)
        joined.left = True
        service: presence_service.PresenceService = info.context.state.presence
        await service.leave(str(room_id), joined.entry_id, dropped=False)
        joined.mailbox.offer(LEFT)
        return True


def _joined(info: Info, room_id: uuid.UUID) -> Joined:
    info.context.websocket  # noqa: B018  (raises BAD_REQUEST over HTTP)
    joined = info.context.presence.get(str(room_id))
    if joined is None:
        raise BadRequest("join the room with roomPresence on this connection first")
    return joined  # type: ignore[no-any-return]
