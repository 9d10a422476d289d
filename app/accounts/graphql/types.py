"""GraphQL types of the accounts domain. Secrets never appear here, except in the one-time
payloads that hand a new key or token to its creator."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.accounts import organizations
from app.accounts.models import (
    ApiKey,
    ApiKeyStatus,
    ApiKeyType,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipRole,
    Organization,
    OrganizationPlan,
    User,
    UserStatus,
)
from app.accounts.sessions import Session
from app.auth.policy import Action
from app.errors import ValidationFailed
from app.graphql.context import Info
from app.graphql.pagination import Connection

if TYPE_CHECKING:
    from app.rooms.graphql import RoomType

PlanEnum = strawberry.enum(OrganizationPlan, name="Plan")
RoleEnum = strawberry.enum(MembershipRole, name="MemberRole")
UserStatusEnum = strawberry.enum(UserStatus, name="UserStatus")
InvitationStatusEnum = strawberry.enum(InvitationStatus, name="InvitationStatus")
ApiKeyKindEnum = strawberry.enum(ApiKeyType, name="ApiKeyKind")
ApiKeyStatusEnum = strawberry.enum(ApiKeyStatus, name="ApiKeyStatus")


@strawberry.type(name="User")
class UserType:
    id: uuid.UUID
    email: str
    name: str | None
    avatar_url: str | None
    status: UserStatusEnum
    email_verified: bool
    mfa_enabled: bool
    preferences: JSON
    created_at: datetime

    @classmethod
    def from_model(cls, user: User) -> UserType:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            avatar_url=user.avatar_url,
            status=user.status,
            email_verified=user.email_verified_at is not None,
            mfa_enabled=user.mfa_enabled_at is not None,
            preferences=user.preferences,
            created_at=user.inserted_at,
        )


@strawberry.type
class AuthPayload:
    """A new developer session. Keep the refresh token secret; it is shown only here."""

    user: UserType
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        return cls(
            user=UserType.from_model(session.user),
            access_token=session.access_token,
            access_token_expires_at=session.access_token_expires_at,
            refresh_token=session.refresh_token,
            refresh_token_expires_at=session.refresh_token_expires_at,
        )


@strawberry.type(name="Member")
class MemberType:
    user: UserType
    role: RoleEnum
    joined_at: datetime | None

    @classmethod
    def from_models(cls, membership: Membership, user: User) -> MemberType:
        return cls(user=UserType.from_model(user), role=membership.role, joined_at=membership.accepted_at)


@strawberry.type(name="Invitation")
class InvitationType:
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: RoleEnum
    status: InvitationStatusEnum
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_model(cls, invitation: Invitation) -> InvitationType:
        return cls(
            id=invitation.id,
            organization_id=invitation.organization_id,
            email=invitation.email,
            role=invitation.role,
            status=invitation.status,
            expires_at=invitation.expires_at,
            created_at=invitation.inserted_at,
        )


@strawberry.type(name="ApiKey")
class ApiKeyGQL:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: ApiKeyKindEnum
    status: ApiKeyStatusEnum
    prefix: str = strawberry.field(description="Shown instead of the key: e.g. sk_live_AbCd1234…")
    scopes: list[str]
    allowed_origins: list[str]
    rate_limit: int = strawberry.field(description="Requests per minute.")
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    usage_count: int
    created_at: datetime

    @classmethod
    def from_model(cls, key: ApiKey) -> ApiKeyGQL:
        label = "pk_live_" if key.type == ApiKeyType.PUBLISHABLE else "sk_live_"
        return cls(
            id=key.id,
            organization_id=key.organization_id,
            name=key.name,
            kind=key.type,
            status=key.status,
            prefix=f"{label}{key.key_prefix}…",
            scopes=list(key.scopes),
            allowed_origins=list(key.allowed_origins),
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            usage_count=key.usage_count,
            created_at=key.inserted_at,
        )


@strawberry.type
class CreatedApiKey:
    """The full key is in `secret`, shown this once; only its hash is stored."""

    api_key: ApiKeyGQL
    secret: str


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
    settings: JSON
    branding: JSON
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
            settings=org.settings,
            branding=org.branding,
            created_at=org.inserted_at,
            updated_at=org.updated_at,
        )

    @strawberry.field(description="Rooms of this organization, oldest first.")
    async def rooms(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Annotated[RoomType, strawberry.lazy("app.rooms.graphql")]]:
        from app.rooms.graphql import list_rooms_connection

        return await list_rooms_connection(info, self.id, first=first, after=after, status=None)

    @strawberry.field(description="Members and their roles (needs members:read).")
    async def members(self, info: Info) -> list[MemberType]:
        await info.context.policy.organization(self.id, Action.MEMBERS_READ)
        async with info.context.session() as session:
            rows = await organizations.list_members(session, self.id)
        return [MemberType.from_models(m, u) for m, u in rows]

    @strawberry.field(description="Pending invitations (admins and owners).")
    async def invitations(self, info: Info) -> list[InvitationType]:
        await info.context.policy.organization(self.id, Action.MEMBERS_MANAGE)
        async with info.context.session() as session:
            rows = await organizations.list_pending_invitations(session, self.id)
        return [InvitationType.from_model(i) for i in rows]

    @strawberry.field(description="API keys of this organization (admins and owners).")
    async def api_keys(self, info: Info) -> list[ApiKeyGQL]:
        await info.context.policy.organization(self.id, Action.KEYS_MANAGE)
        async with info.context.session() as session:
            rows = await organizations.list_api_keys(session, self.id)
        return [ApiKeyGQL.from_model(k) for k in rows]


def json_map(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be a JSON object", field=field)
    return value
