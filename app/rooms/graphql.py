"""GraphQL types and queries of rooms (the realtime issue adds mutations and subscriptions)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.errors import NotFound, ValidationFailed
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
    has_password: bool
    features: JSON
    metadata: JSON
    status: RoomStatusEnum
    archived_at: datetime | None
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
            created_at=room.inserted_at,
            updated_at=room.updated_at,
        )

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
) -> Connection[RoomType]:
    await info.context.policy.organization(organization_id, Action.ROOMS_READ)
    async with info.context.session() as session:
        page = await service.list_rooms(session, organization_id, status=status, first=first, after=after)
    return Connection.from_page(page, RoomType.from_model)


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
    ) -> Connection[RoomType]:
        return await list_rooms_connection(info, organization_id, first=first, after=after, status=status)
