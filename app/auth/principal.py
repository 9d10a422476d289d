"""The authenticated caller of an operation, as resolvers and the policy see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RoomAccess(StrEnum):
    """What an end-user token may do in the rooms a grant matches."""

    READ = "read"
    WRITE = "write"
    PRESENCE = "presence"
    COMMENT = "comment"


@dataclass(frozen=True)
class RoomGrant:
    """`pattern` is a room id or slug, or a slug prefix ending in `*` (e.g. `team-42:*`)."""

    pattern: str
    access: frozenset[RoomAccess]

    def matches(self, room_id: uuid.UUID, room_slug: str) -> bool:
        if self.pattern.endswith("*"):
            return room_slug.startswith(self.pattern[:-1])
        return self.pattern in (str(room_id), room_slug)


@dataclass(frozen=True)
class Anonymous:
    pass


@dataclass(frozen=True)
class Developer:
    """A person with a SyncForge account, authenticated by an access JWT."""

    user_id: uuid.UUID
    # When the credential stops being valid (epoch seconds): a WebSocket connection is closed then.
    expires_at: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SecretKeyClient:
    """A developer's backend, authenticated by a secret key of one organization."""

    organization_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: float | None = field(default=None, compare=False)
    rate_limit: int | None = field(default=None, compare=False)  # the key's, per minute


@dataclass(frozen=True)
class PublishableKeyClient:
    """A browser that presented a publishable key but no end-user token (can do almost nothing)."""

    organization_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: float | None = field(default=None, compare=False)
    rate_limit: int | None = field(default=None, compare=False)  # the key's, per minute


@dataclass(frozen=True)
class EndUserClient:
    """A browser acting for one end-user: publishable key plus a token minted by a secret key."""

    organization_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    end_user_id: uuid.UUID
    external_id: str
    info: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    grants: tuple[RoomGrant, ...] = ()
    expires_at: float | None = field(default=None, compare=False)  # the token's or the key's, earlier
    rate_limit: int | None = field(default=None, compare=False)  # the key's, per minute

    def room_access(self, room_id: uuid.UUID, room_slug: str) -> frozenset[RoomAccess]:
        access: set[RoomAccess] = set()
        for grant in self.grants:
            if grant.matches(room_id, room_slug):
                access |= grant.access
        return frozenset(access)


Principal = Anonymous | Developer | SecretKeyClient | PublishableKeyClient | EndUserClient
KeyClient = SecretKeyClient | PublishableKeyClient | EndUserClient
