"""GraphQL types and queries of organizations (secured by the accounts issue)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.accounts import service
from app.accounts.models import Organization, OrganizationPlan
from app.graphql.context import Info
from app.graphql.pagination import Connection

if TYPE_CHECKING:
    from app.rooms.graphql import RoomType

PlanEnum = strawberry.enum(OrganizationPlan, name="Plan")


@strawberry.type(name="Organization")
class OrganizationType:
    id: uuid.UUID
    name: str
    slug: str
    logo_url: str | None
    plan: PlanEnum
    max_rooms: int
    max_monthly_connections: int
    max_concurrent_users: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, org: Organization) -> OrganizationType:
        return cls(
            id=org.id,
            name=org.name,
            slug=org.slug,
            logo_url=org.logo_url,
            plan=org.plan,
            max_rooms=org.max_rooms,
            max_monthly_connections=org.max_monthly_connections,
            max_concurrent_users=org.max_concurrent_users,
            created_at=org.inserted_at,
            updated_at=org.updated_at,
        )

    @strawberry.field(description="Rooms of this organization, oldest first.")
    async def rooms(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Annotated[RoomType, strawberry.lazy("app.rooms.graphql")]]:
        from app.rooms.graphql import list_rooms_connection

        return await list_rooms_connection(info, self.id, first=first, after=after, status=None)


@strawberry.type
class AccountsQuery:
    @strawberry.field(description="One organization, by id or by slug.")
    async def organization(
        self, info: Info, id: uuid.UUID | None = None, slug: str | None = None
    ) -> OrganizationType:
        async with info.context.session() as session:
            org = await service.get_organization(session, id=id, slug=slug)
        return OrganizationType.from_model(org)

    @strawberry.field(description="Organizations, oldest first.")
    async def organizations(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[OrganizationType]:
        async with info.context.session() as session:
            page = await service.list_organizations(session, first=first, after=after)
        return Connection.from_page(page, OrganizationType.from_model)
