"""The one policy layer: may this principal do this action on this object?

Every resolver and subscription asks here. Objects of another organization are reported as
NOT_FOUND (never FORBIDDEN), so ids cannot be probed across tenants.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Membership, MembershipRole, MembershipStatus
from app.auth.principal import (
    Anonymous,
    Developer,
    EndUserClient,
    Principal,
    PublishableKeyClient,
    RoomAccess,
    SecretKeyClient,
)
from app.db.unit_of_work import reading_session
from app.errors import Forbidden, NotFound, Unauthorized
from app.rooms.models import RoomAccess as RoomVisibility


class Action(StrEnum):
    ORG_READ = "org:read"
    ORG_UPDATE = "org:update"
    ORG_DELETE = "org:delete"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    KEYS_MANAGE = "keys:manage"
    END_USER_TOKENS_CREATE = "end_user_tokens:create"
    WEBHOOKS_MANAGE = "webhooks:manage"
    BILLING_MANAGE = "billing:manage"
    ROOMS_READ = "rooms:read"
    ROOMS_WRITE = "rooms:write"
    PRESENCE_READ = "presence:read"
    PRESENCE_WRITE = "presence:write"
    DOCUMENTS_READ = "documents:read"
    DOCUMENTS_WRITE = "documents:write"
    COMMENTS_READ = "comments:read"
    COMMENTS_WRITE = "comments:write"
    NOTIFICATIONS_READ = "notifications:read"


API_KEY_SCOPES: tuple[str, ...] = (
    "rooms:read",
    "rooms:write",
    "presence:read",
    "presence:write",
    "documents:read",
    "documents:write",
    "comments:read",
    "comments:write",
    "notifications:read",
    "webhooks:manage",
    "billing:manage",
)

# What a new key may do when its creator names no scopes: the collaboration features, none of
# the administrative ones (webhooks, billing) nor the notification inbox.
DEFAULT_KEY_SCOPES: tuple[str, ...] = API_KEY_SCOPES[:8]

_READ = {
    Action.ORG_READ,
    Action.MEMBERS_READ,
    Action.ROOMS_READ,
    Action.PRESENCE_READ,
    Action.DOCUMENTS_READ,
    Action.COMMENTS_READ,
    Action.NOTIFICATIONS_READ,
}
_COLLABORATE = {
    Action.ROOMS_WRITE,
    Action.PRESENCE_WRITE,
    Action.DOCUMENTS_WRITE,
    Action.COMMENTS_WRITE,
}
_ADMINISTER = {
    Action.ORG_UPDATE,
    Action.MEMBERS_MANAGE,
    Action.KEYS_MANAGE,
    Action.END_USER_TOKENS_CREATE,
    Action.WEBHOOKS_MANAGE,
    Action.BILLING_MANAGE,
}
ROLE_ACTIONS: dict[MembershipRole, frozenset[Action]] = {
    MembershipRole.VIEWER: frozenset(_READ),
    MembershipRole.MEMBER: frozenset(_READ | _COLLABORATE),
    MembershipRole.ADMIN: frozenset(_READ | _COLLABORATE | _ADMINISTER),
    MembershipRole.OWNER: frozenset(_READ | _COLLABORATE | _ADMINISTER | {Action.ORG_DELETE}),
}

# What a secret key may do: organization-level reads, plus the actions its scopes name.
_SECRET_KEY_ALWAYS = {Action.ORG_READ, Action.END_USER_TOKENS_CREATE}
# The room-level access an end-user token needs for each action.
END_USER_ROOM_ACCESS: dict[Action, RoomAccess] = {
    Action.ROOMS_READ: RoomAccess.READ,
    Action.DOCUMENTS_READ: RoomAccess.READ,
    Action.COMMENTS_READ: RoomAccess.READ,
    Action.ROOMS_WRITE: RoomAccess.WRITE,
    Action.DOCUMENTS_WRITE: RoomAccess.WRITE,
    Action.PRESENCE_READ: RoomAccess.PRESENCE,
    Action.PRESENCE_WRITE: RoomAccess.PRESENCE,
    Action.COMMENTS_WRITE: RoomAccess.COMMENT,
}


class RoomLike(Protocol):
    id: uuid.UUID
    organization_id: uuid.UUID
    slug: str
    access: RoomVisibility


# What a room's `access` setting gives to SDK clients that no token grant names:
# organization rooms are open to every end-user of the organization, public rooms also to
# browsers that present only the publishable key.
_ORG_WIDE = frozenset({RoomAccess.READ, RoomAccess.PRESENCE})
_PUBLIC_ANONYMOUS = frozenset({RoomAccess.READ})


class Policy:
    """Built per request (or per WebSocket connection) around its principal."""

    def __init__(self, principal: Principal, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.principal = principal
        self._session_factory = session_factory
        self._roles: dict[uuid.UUID, MembershipRole | None] = {}

    def require_authenticated(self) -> Principal:
        if isinstance(self.principal, Anonymous):
            raise Unauthorized("authentication required")
        return self.principal

    def require_developer(self) -> Developer:
        principal = self.require_authenticated()
        if not isinstance(principal, Developer):
            raise Forbidden("this operation needs a developer session (access token)")
        return principal

    def require_secret_key(self) -> SecretKeyClient:
        principal = self.require_authenticated()
        if not isinstance(principal, SecretKeyClient):
            raise Forbidden("this operation needs a secret API key")
        return principal

    async def role_in(self, organization_id: uuid.UUID) -> MembershipRole | None:
        if not isinstance(self.principal, Developer):
            return None
        if organization_id not in self._roles:
            async with reading_session(self._session_factory) as session:
                role = (
                    await session.execute(
                        select(Membership.role).where(
                            Membership.organization_id == organization_id,
                            Membership.user_id == self.principal.user_id,
                            Membership.status == MembershipStatus.ACTIVE,
                        )
                    )
                ).scalar_one_or_none()
            self._roles[organization_id] = role
        return self._roles[organization_id]

    async def organization(self, organization_id: uuid.UUID, action: Action) -> None:
        """Raise unless the principal may do `action` in the organization."""
        principal = self.require_authenticated()
        if isinstance(principal, Developer):
            role = await self.role_in(organization_id)
            if role is None:
                raise NotFound("organization")
            if action not in ROLE_ACTIONS[role]:
                raise Forbidden(f"your role ({role.value}) may not {action.value}")
            return
        if principal.organization_id != organization_id:
            raise NotFound("organization")
        if isinstance(principal, SecretKeyClient):
            if action in _SECRET_KEY_ALWAYS or action.value in principal.scopes:
                return
            raise Forbidden(f"this API key lacks the scope {action.value}")
        raise Forbidden(f"{_describe(principal)} may not {action.value} at organization level")

    async def room(self, room: RoomLike, action: Action) -> None:
        """Raise unless the principal may do `action` in this room."""
        principal = self.require_authenticated()
        if isinstance(principal, EndUserClient | PublishableKeyClient):
            if principal.organization_id != room.organization_id:
                raise NotFound("room")
            needed = END_USER_ROOM_ACCESS.get(action)
            if needed is None or (action.value not in principal.scopes and _is_scoped(action)):
                raise Forbidden(f"this publishable key lacks the scope {action.value}")
            access = _room_access(principal, room)
            if not access:
                raise NotFound("room")  # a room the token does not name does not exist for it
            if needed not in access:
                raise Forbidden(f"your token does not grant {needed.value} in this room")
            return
        try:
            await self.organization(room.organization_id, action)
        except NotFound:
            raise NotFound("room") from None


def _room_access(principal: EndUserClient | PublishableKeyClient, room: RoomLike) -> frozenset[RoomAccess]:
    granted = (
        principal.room_access(room.id, room.slug) if isinstance(principal, EndUserClient) else frozenset()
    )
    if room.access == RoomVisibility.PRIVATE:
        return granted
    if isinstance(principal, EndUserClient):
        return granted | _ORG_WIDE
    return _PUBLIC_ANONYMOUS if room.access == RoomVisibility.PUBLIC else frozenset()


def _is_scoped(action: Action) -> bool:
    return action.value in API_KEY_SCOPES


def _describe(principal: Principal) -> str:
    if isinstance(principal, PublishableKeyClient):
        return "a publishable key without an end-user token"
    return "an end-user token"
