"""GraphQL types, queries and mutations of rooms (FR-3)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.audit import service as audit
from app.auth.policy import Action
from app.auth.principal import Developer, SecretKeyClient
from app.db import UnitOfWork
from app.errors import Forbidden, NotFound, ValidationFailed
from app.graphql.context import Info
from app.graphql.pagination import Connection
from app.rooms import service
from app.rooms.models import Room, RoomAccess, RoomStatus
from app.rooms.models import RoomType as RoomKind

if TYPE_CHECKING:
    from app.accounts.graphql.types import OrganizationType

RoomKindEnum = strawberry.enum(RoomKind, name="RoomKind")
RoomAccessEnum = strawberry.enum(RoomAccess, name="RoomAccess")
RoomStatusEnum = strawberry.enum(RoomStatus, name="RoomStatus")


@strawberry.type(name="Room")
class RoomType:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    slug: str
    description: str | None
    type: RoomKindEnum
    access: RoomAccessEnum
    has_password: bool = strawberry.field(description="The password itself is never returned.")
    features: JSON
    metadata: JSON
    status: RoomStatusEnum
    archived_at: datetime | None
    max_participants: int
    presence_ttl_seconds: int
    cursor_tick_ms: int
    last_active_at: datetime | None = strawberry.field(description="The last time someone was present.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, room: Room) -> RoomType:
        return cls(
            id=room.id,
            organization_id=room.organization_id,
            name=room.name,
            slug=room.slug,
            description=room.description,
            type=room.type,
            access=room.access,
            has_password=room.password_hash is not None,
            features=room.features,
            metadata=room.metadata_,
            status=room.status,
            archived_at=room.archived_at,
            max_participants=room.max_participants,
            presence_ttl_seconds=room.presence_ttl_s,
            cursor_tick_ms=room.cursor_tick_ms,
            last_active_at=room.last_active_at,
            created_at=room.inserted_at,
            updated_at=room.updated_at,
        )

    @strawberry.field(description="Connections present in the room right now (live, never stored).")
    async def participant_count(self, info: Info) -> int:
        # The presence registry lives on the app state as `presence` (memory or Redis), with
        # `async count(room_id) -> int`. A process built without it counts nobody rather than
        # reading the database, whose participant rows are written in batches and lag behind.
        presence = getattr(info.context.state, "presence", None)
        count = getattr(presence, "count", None)
        if count is None:
            return 0
        return int(await count(self.id))

    @strawberry.field
    async def organization(
        self, info: Info
    ) -> Annotated[OrganizationType, strawberry.lazy("app.accounts.graphql.types")]:
        from app.accounts.graphql.types import OrganizationType

        await info.context.policy.organization(self.organization_id, Action.ORG_READ)
        org = await info.context.loaders.organization_by_id.load(self.organization_id)
        if org is None:
            raise NotFound("organization")
        return OrganizationType.from_model(org)


async def list_rooms_connection(
    info: Info,
    organization_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    status: RoomStatus | None,
    type: RoomKind | None = None,
    search: str | None = None,
) -> Connection[RoomType]:
    await info.context.policy.organization(organization_id, Action.ROOMS_READ)
    async with info.context.session() as session:
        page = await service.list_rooms(
            session, organization_id, status=status, type=type, search=search, first=first, after=after
        )
    return Connection.from_page(page, RoomType.from_model)


@strawberry.input
class CreateRoomInput:
    name: str
    slug: str = strawberry.field(
        description="Unique in the organization: 1-128 of a-z 0-9 - : _ . (e.g. team-42:design)."
    )
    description: str | None = None
    type: RoomKindEnum = RoomKind.DOCUMENT
    access: RoomAccessEnum = RoomAccess.PRIVATE
    password: str | None = strawberry.field(
        default=None, description="Optional, at least 4 characters; stored hashed, never returned."
    )
    features: JSON | None = strawberry.field(
        default=None,
        description="Flags merged over the defaults: presence, cursors, comments, voice, screen_share.",
    )
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object of at most 16 KB.")
    max_participants: int = strawberry.field(default=100, description="1 to 10000.")
    presence_ttl_seconds: int = strawberry.field(default=30, description="5 to 3600.")
    cursor_tick_ms: int = strawberry.field(default=50, description="16 to 1000.")


@strawberry.input(description="Only the fields given change.")
class UpdateRoomInput:
    name: str | None = strawberry.UNSET
    slug: str | None = strawberry.UNSET
    description: str | None = strawberry.field(default=strawberry.UNSET, description="null removes it.")
    type: RoomKindEnum | None = strawberry.UNSET
    access: RoomAccessEnum | None = strawberry.UNSET
    password: str | None = strawberry.field(default=strawberry.UNSET, description="null removes it.")
    features: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="Merged over the current flags; null restores the defaults."
    )
    metadata: JSON | None = strawberry.field(default=strawberry.UNSET, description="Replaces it; null: {}.")
    max_participants: int | None = strawberry.UNSET
    presence_ttl_seconds: int | None = strawberry.UNSET
    cursor_tick_ms: int | None = strawberry.UNSET

    def changes(self) -> dict[str, Any]:
        given = {
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "type": self.type,
            "access": self.access,
            "password": self.password,
            "features": self.features,
            "metadata": self.metadata,
            "max_participants": self.max_participants,
            "presence_ttl_s": self.presence_ttl_seconds,
            "cursor_tick_ms": self.cursor_tick_ms,
        }
        return {key: value for key, value in given.items() if value is not strawberry.UNSET}


def _actor_id(info: Info) -> uuid.UUID | None:
    principal = info.context.principal
    return principal.user_id if isinstance(principal, Developer) else None


async def _writable_room(info: Info, session: AsyncSession, room_id: uuid.UUID) -> Room:
    """The room, if the caller may manage it. Only developers (member and up) and secret keys with
    rooms:write manage rooms; end-users see NOT_FOUND or FORBIDDEN whatever their grants say."""
    room = await service.get_room(session, room_id)
    await info.context.policy.room(room, Action.ROOMS_WRITE)
    if not isinstance(info.context.principal, Developer | SecretKeyClient):
        raise Forbidden("end-users cannot manage rooms; use a secret key or a developer session")
    return room


def _record(
    info: Info, session: AsyncSession, action: str, room: Room, changes: dict[str, Any] | None = None
) -> None:
    audit.record(
        session,
        action,
        principal=info.context.principal,
        organization_id=room.organization_id,
        entity_type="room",
        entity_id=room.id,
        changes={"slug": room.slug, **(changes or {})},
        ip_address=info.context.client.ip,
        user_agent=info.context.client.user_agent,
    )


@strawberry.type
class RoomsQuery:
    @strawberry.field(description="One room, by id, or by organization and slug.")
    async def room(
        self,
        info: Info,
        id: uuid.UUID | None = None,
        organization_id: uuid.UUID | None = None,
        slug: str | None = None,
    ) -> RoomType:
        async with info.context.session() as session:
            if id is not None:
                room = await service.get_room(session, id)
            elif organization_id is not None and slug is not None:
                room = await service.get_room_by_slug(session, organization_id, slug)
            else:
                raise ValidationFailed("give id, or organizationId and slug", field="id")
        await info.context.policy.room(room, Action.ROOMS_READ)
        return RoomType.from_model(room)

    @strawberry.field(description="Rooms of an organization, oldest first.")
    async def rooms(
        self,
        info: Info,
        organization_id: uuid.UUID,
        first: int = 20,
        after: str | None = None,
        status: RoomStatusEnum | None = None,
        type: RoomKindEnum | None = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="A case-insensitive part of the name or the slug."),
        ] = None,
    ) -> Connection[RoomType]:
        return await list_rooms_connection(
            info, organization_id, first=first, after=after, status=status, type=type, search=search
        )


@strawberry.type
class RoomsMutation:
    @strawberry.mutation(description="Create a room (members and up, or a secret key with rooms:write).")
    async def create_room(self, info: Info, organization_id: uuid.UUID, input: CreateRoomInput) -> RoomType:
        await info.context.policy.organization(organization_id, Action.ROOMS_WRITE)
        async with info.context.unit_of_work() as uow:
            room = await service.create_room(
                uow.session,
                organization_id,
                name=input.name,
                slug=input.slug,
                description=input.description,
                type=input.type,
                access=input.access,
                password=input.password,
                features=input.features,
                metadata=input.metadata,
                max_participants=input.max_participants,
                presence_ttl_s=input.presence_ttl_seconds,
                cursor_tick_ms=input.cursor_tick_ms,
                created_by_id=_actor_id(info),
            )
            _record(info, uow.session, "room.created", room)
        return RoomType.from_model(room)

    @strawberry.mutation(description="Change a room; only the fields given change.")
    async def update_room(self, info: Info, id: uuid.UUID, input: UpdateRoomInput) -> RoomType:
        async with info.context.unit_of_work() as uow:
            room = await _writable_room(info, uow.session, id)
            changed = await service.update_room(uow.session, room, input.changes())
            if changed:
                _record(info, uow.session, "room.updated", room, {"fields": changed})
                _announce_change(info, uow, id)
        return RoomType.from_model(room)

    @strawberry.mutation(description="Archive a room: nobody can join it until it is unarchived.")
    async def archive_room(self, info: Info, id: uuid.UUID) -> RoomType:
        async with info.context.unit_of_work() as uow:
            room = await _writable_room(info, uow.session, id)
            if await service.archive_room(uow.session, room):
                _record(info, uow.session, "room.archived", room)
                _announce_change(info, uow, id)
        return RoomType.from_model(room)

    @strawberry.mutation(description="Make an archived room active again (counts against the plan's rooms).")
    async def unarchive_room(self, info: Info, id: uuid.UUID) -> RoomType:
        async with info.context.unit_of_work() as uow:
            room = await _writable_room(info, uow.session, id)
            if await service.unarchive_room(uow.session, room):
                _record(info, uow.session, "room.unarchived", room)
                _announce_change(info, uow, id)
        return RoomType.from_model(room)

    @strawberry.mutation(description="Delete a room for good, with its documents, comments and history.")
    async def delete_room(self, info: Info, id: uuid.UUID) -> bool:
        async with info.context.unit_of_work() as uow:
            room = await _writable_room(info, uow.session, id)
            _record(info, uow.session, "room.deleted", room, {"name": room.name})
            await service.delete_room(uow.session, room)
            _announce_change(info, uow, id)
        return True


def _announce_change(info: Info, uow: UnitOfWork, room_id: uuid.UUID) -> None:
    """After the commit, every process's room cache forgets the room (realtime checks read it)."""
    rooms = getattr(info.context.state, "rooms", None)
    if rooms is not None:
        uow.on_commit(lambda: rooms.changed(room_id))
