"""Short-lived tokens a secret key mints for one end-user of the developer's app."""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.end_user_models import EndUser
from app.auth.principal import EndUserClient, RoomAccess, RoomGrant
from app.db.types import utcnow
from app.errors import Unauthorized, ValidationFailed
from app.security import jwt
from app.security.keys import Keys

_EXTERNAL_ID = re.compile(r"^[\w.@:+-]{1,128}$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")  # also the demo's visitor colors
MAX_GRANTS = 50


# An unchanged end-user's row is written again (last_seen_at) at most this often per process.
LAST_SEEN_RESOLUTION_S = 60.0
MAX_KNOWN_END_USERS = 100_000


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: datetime
    end_user_id: uuid.UUID
    external_id: str


Profile = tuple[str | None, str | None, str | None, str]


class KnownEndUsers:
    """End-users this process wrote lately. A backend mints a token per page load of each of its
    users: re-minting for one whose profile is unchanged signs the token without touching the
    database (the row exists: end-users are never deleted), and its last_seen_at stays at most
    LAST_SEEN_RESOLUTION_S behind. Bounded (least recently minted forgotten first)."""

    def __init__(self, max_size: int = MAX_KNOWN_END_USERS) -> None:
        self._max_size = max_size
        self._known: OrderedDict[tuple[uuid.UUID, str], tuple[uuid.UUID, Profile, float]] = OrderedDict()

    def recent(self, organization_id: uuid.UUID, external_id: str, profile: Profile) -> uuid.UUID | None:
        key = (organization_id, external_id)
        found = self._known.get(key)
        if found is None:
            return None
        end_user_id, written, written_at = found
        if written != profile or time.monotonic() - written_at > LAST_SEEN_RESOLUTION_S:
            return None
        self._known.move_to_end(key)
        return end_user_id

    def remember(
        self, organization_id: uuid.UUID, external_id: str, profile: Profile, end_user_id: uuid.UUID
    ) -> None:
        """Call once the row is committed."""
        key = (organization_id, external_id)
        self._known[key] = (end_user_id, profile, time.monotonic())
        self._known.move_to_end(key)
        if len(self._known) > self._max_size:
            self._known.popitem(last=False)


def parse_grants(grants: list[tuple[str, list[str]]]) -> tuple[RoomGrant, ...]:
    if len(grants) > MAX_GRANTS:
        raise ValidationFailed(f"at most {MAX_GRANTS} room grants", field="permissions")
    parsed = []
    for pattern, access in grants:
        if not 1 <= len(pattern) <= 200 or "*" in pattern[:-1]:
            raise ValidationFailed(
                "a room pattern is a room id or slug, or a prefix ending in *", field="permissions"
            )
        try:
            levels = frozenset(RoomAccess(level) for level in access)
        except ValueError:
            allowed = ", ".join(a.value for a in RoomAccess)
            raise ValidationFailed(f"access must be among {allowed}", field="permissions") from None
        if not levels:
            raise ValidationFailed("each grant needs at least one access level", field="permissions")
        # Room slugs are lowercase; so are UUIDs in canonical form.
        parsed.append(RoomGrant(pattern=pattern.lower(), access=levels))
    return tuple(parsed)


@dataclass(frozen=True)
class TokenRequest:
    """What a token is minted for: an end-user of one organization, with their profile and grants."""

    organization_id: uuid.UUID
    api_key_id: uuid.UUID  # the key the token goes with
    external_id: str
    name: str | None
    avatar_url: str | None
    color: str | None
    info: dict[str, Any]
    grants: tuple[RoomGrant, ...]
    ttl_s: int

    @property
    def profile(self) -> Profile:
        return (
            self.name,
            self.avatar_url,
            self.color,
            json.dumps(self.info, sort_keys=True, separators=(",", ":")),
        )

    def check(self, max_ttl_s: int) -> None:
        if not _EXTERNAL_ID.match(self.external_id):
            raise ValidationFailed(
                "userId must be 1-128 characters of letters, digits and ._@:+-", field="userId"
            )
        if self.color is not None and not COLOR.match(self.color):
            raise ValidationFailed("color must look like #RRGGBB", field="color")
        if not 60 <= self.ttl_s <= max_ttl_s:
            raise ValidationFailed(f"ttlSeconds must be between 60 and {max_ttl_s}", field="ttlSeconds")


async def mint(session: AsyncSession, keys: Keys, request: TokenRequest, *, max_ttl_s: int) -> MintedToken:
    """Create or refresh the end-user's row (the caller commits), then sign."""
    request.check(max_ttl_s)
    return sign(keys, request, await _upsert(session, request))


async def _upsert(session: AsyncSession, request: TokenRequest) -> uuid.UUID:
    """One statement, whether the end-user is new or known (INSERT ... ON CONFLICT DO UPDATE
    ... RETURNING, on SQLite as on PostgreSQL): no read first, no ORM flush."""
    table = EndUser.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    profile = {
        "name": request.name,
        "avatar_url": request.avatar_url,
        "color": request.color,
        "info": request.info,
        "last_seen_at": now,
        "updated_at": now,
    }
    statement = (
        insert(table)
        .values(
            id=uuid.uuid4(),
            organization_id=request.organization_id,
            external_id=request.external_id,
            inserted_at=now,
            **profile,
        )
        .on_conflict_do_update(index_elements=["organization_id", "external_id"], set_=profile)
        .returning(table.c.id)
    )
    return (await session.execute(statement)).scalar_one()  # type: ignore[no-any-return]


def sign(keys: Keys, request: TokenRequest, end_user_id: uuid.UUID) -> MintedToken:
    ttl = timedelta(seconds=request.ttl_s)
    token = jwt.encode(
        keys.jwt,
        subject=request.external_id,
        audience=jwt.END_USER_AUDIENCE,
        ttl=ttl,
        org=str(request.organization_id),
        eid=str(end_user_id),
        kid=str(request.api_key_id),
        info={"name": request.name, "avatar": request.avatar_url, "color": request.color, **request.info},
        perms=[{"room": g.pattern, "access": sorted(a.value for a in g.access)} for g in request.grants],
    )
    return MintedToken(token, utcnow() + ttl, end_user_id, request.external_id)


@functools.cache
def _access_set(levels: tuple[str, ...]) -> frozenset[RoomAccess]:
    return frozenset(RoomAccess(level) for level in levels)


def _access(levels: list[str]) -> frozenset[RoomAccess]:
    """Shared sets: every connection's principal holds its grants for the connection's life."""
    return _access_set(tuple(sorted(set(levels))))


# Tokens verified lately, by (signing key, token): a token is presented again on every reconnect
# of its page (a whole room at once after a deploy), and its signature check is most of a
# connection_init. Expiry is still checked on each use. Bounded, least recently used first out.
MAX_VERIFIED_TOKENS = 50_000
_verified: OrderedDict[tuple[bytes, str], tuple[dict[str, Any], tuple[RoomGrant, ...]]] = OrderedDict()


def _verify(keys: Keys, token: str) -> tuple[dict[str, Any], tuple[RoomGrant, ...]]:
    key = (keys.jwt, token)
    found = _verified.get(key)
    if found is not None and found[0]["exp"] + jwt.LEEWAY_S > time.time():
        _verified.move_to_end(key)
        return found
    try:
        claims = jwt.decode(keys.jwt, token, audience=jwt.END_USER_AUDIENCE)
    except jwt.InvalidToken as exc:
        _verified.pop(key, None)
        raise Unauthorized(f"invalid end-user token ({exc})") from None
    grants = tuple(RoomGrant(pattern=p["room"], access=_access(p["access"])) for p in claims.get("perms", []))
    _verified[key] = (claims, grants)
    if len(_verified) > MAX_VERIFIED_TOKENS:
        _verified.popitem(last=False)
    return claims, grants


def principal_from_token(
    keys: Keys, token: str, *, organization_id: uuid.UUID, api_key_id: uuid.UUID, scopes: frozenset[str]
) -> EndUserClient:
    """Verify an end-user token presented with a publishable key of `organization_id`."""
    claims, grants = _verify(keys, token)
    if claims.get("org") != str(organization_id):
        raise Unauthorized("this end-user token belongs to another organization")
    return EndUserClient(
        organization_id=organization_id,
        api_key_id=api_key_id,
        scopes=scopes,
        end_user_id=uuid.UUID(claims["eid"]),
        external_id=claims["sub"],
        info=dict(claims.get("info", {})),
        grants=grants,
        expires_at=float(claims["exp"]),
    )
