"""API keys: `pk_live_...` (browsers) and `sk_live_...` (backends), shown once, stored hashed."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import ApiKey, ApiKeyStatus, ApiKeyType
from app.accounts.organizations import validate_name
from app.auth.policy import API_KEY_SCOPES, DEFAULT_KEY_SCOPES
from app.db.types import utcnow
from app.errors import NotFound, ValidationFailed
from app.security.tokens import hash_token, same_hash

if TYPE_CHECKING:
    from app.auth.key_cache import KeySnapshot

PREFIXES = {ApiKeyType.PUBLISHABLE: "pk_live_", ApiKeyType.SECRET: "sk_live_"}
_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 40  # ~238 bits
LOOKUP_LENGTH = 8


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # the full key: returned once, never stored


def generate(key_type: ApiKeyType) -> tuple[str, str]:
    """A new key and its lookup prefix (the first 8 random characters)."""
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return PREFIXES[key_type] + random_part, random_part[:LOOKUP_LENGTH]


def parse(key: str) -> tuple[ApiKeyType, str] | None:
    for key_type, prefix in PREFIXES.items():
        if key.startswith(prefix) and len(key) == len(prefix) + _RANDOM_LENGTH:
            return key_type, key[len(prefix) : len(prefix) + LOOKUP_LENGTH]
    return None


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(API_KEY_SCOPES))
    if unknown:
        raise ValidationFailed(f"unknown scopes: {', '.join(unknown)}", field="scopes")
    return sorted(set(scopes))


def validate_origins(origins: list[str]) -> list[str]:
    for origin in origins:
        if (origin != "*" and not origin.startswith(("http://", "https://"))) or origin.endswith("/"):
            raise ValidationFailed(
                f"origin {origin!r} must look like https://app.example.com", field="allowedOrigins"
            )
    return sorted(set(origins))


async def find_active(session: AsyncSession, key: str) -> ApiKey | None:
    """The active, unexpired key matching `key`, compared in constant time; None otherwise."""
    parsed = parse(key)
    if parsed is None:
        return None
    key_type, lookup = parsed
    candidates = (
        await session.execute(select(ApiKey).where(ApiKey.key_prefix == lookup, ApiKey.type == key_type))
    ).scalars()
    now = utcnow()
    for candidate in candidates:
        if same_hash(key, candidate.key_hash):
            if candidate.status != ApiKeyStatus.ACTIVE:
                return None
            if candidate.expires_at is not None and candidate.expires_at <= now:
                return None
            return candidate
    return None


async def active(session: AsyncSession, key_ids: Iterable[uuid.UUID]) -> list[ApiKey]:
    """Those of `key_ids` that are active and unexpired."""
    now = utcnow()
    rows = await session.execute(
        select(ApiKey).where(
            ApiKey.id.in_(list(key_ids)),  # type: ignore[attr-defined]
            ApiKey.status == ApiKeyStatus.ACTIVE,
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),  # type: ignore[union-attr]
        )
    )
    return list(rows.scalars())


def origin_allowed(api_key: ApiKey | KeySnapshot, origin: str | None) -> bool:
    """Publishable keys with allowed origins accept only those browser origins."""
    if api_key.type != ApiKeyType.PUBLISHABLE or not api_key.allowed_origins:
        return True
    return "*" in api_key.allowed_origins or origin in api_key.allowed_origins


async def issue(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    name: str,
    key_type: ApiKeyType,
    scopes: list[str] | None,
    expires_at: datetime | None,
    allowed_origins: list[str],
    rate_limit: int | None,
    created_by_id: uuid.UUID | None,
    default_rate_limit: int,
) -> IssuedKey:
    name = validate_name(name)
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed("expiresAt must be in the future", field="expiresAt")
    if rate_limit is not None:
        _valid_rate_limit(rate_limit)
    secret, lookup = generate(key_type)
    api_key = ApiKey(
        organization_id=organization_id,
        name=name,
        type=key_type,
        key_prefix=lookup,
        key_hash=hash_token(secret),
        scopes=validate_scopes(scopes) if scopes is not None else list(DEFAULT_KEY_SCOPES),
        expires_at=expires_at,
        allowed_origins=validate_origins(allowed_origins),
        rate_limit=rate_limit or default_rate_limit,
        created_by_id=created_by_id,
    )
    session.add(api_key)
    await session.flush()
    return IssuedKey(api_key=api_key, secret=secret)


async def get_in_organization(
    session: AsyncSession, api_key_id: uuid.UUID, organization_id: uuid.UUID | None = None
) -> ApiKey:
    api_key = await session.get(ApiKey, api_key_id)
    if api_key is None or (organization_id is not None and api_key.organization_id != organization_id):
        raise NotFound("api key")
    return api_key


def update(
    api_key: ApiKey,
    *,
    name: str | None = None,
    scopes: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    rate_limit: int | None = None,
) -> dict[str, object]:
    """Change a key's settings (the fields given); answers what changed, for the audit log."""
    if api_key.status != ApiKeyStatus.ACTIVE:
        raise ValidationFailed("a revoked key cannot be changed", field="id")
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = validate_name(name)
    if scopes is not None:
        changes["scopes"] = validate_scopes(scopes)
    if allowed_origins is not None:
        if allowed_origins and api_key.type != ApiKeyType.PUBLISHABLE:
            raise ValidationFailed("allowedOrigins applies to publishable keys", field="allowedOrigins")
        changes["allowed_origins"] = validate_origins(allowed_origins)
    if rate_limit is not None:
        changes["rate_limit"] = _valid_rate_limit(rate_limit)
    changed = {field: value for field, value in changes.items() if getattr(api_key, field) != value}
    for field, value in changed.items():
        setattr(api_key, field, value)
    return changed


def _valid_rate_limit(rate_limit: int) -> int:
    if not 1 <= rate_limit <= 1_000_000:
        raise ValidationFailed("rateLimit must be between 1 and 1000000", field="rateLimit")
    return rate_limit


def revoke(api_key: ApiKey, revoked_by_id: uuid.UUID | None) -> None:
    if api_key.status == ApiKeyStatus.ACTIVE:
        api_key.status = ApiKeyStatus.REVOKED
        api_key.revoked_at = utcnow()
        api_key.revoked_by_id = revoked_by_id


async def rotate(session: AsyncSession, api_key: ApiKey, rotated_by_id: uuid.UUID | None) -> IssuedKey:
    """Revoke the key and issue a new one with the same name, type, scopes and limits."""
    revoke(api_key, rotated_by_id)
    return await issue(
        session,
        organization_id=api_key.organization_id,
        name=api_key.name,
        key_type=api_key.type,
        scopes=list(api_key.scopes),
        expires_at=api_key.expires_at if api_key.expires_at and api_key.expires_at > utcnow() else None,
        allowed_origins=list(api_key.allowed_origins),
        rate_limit=api_key.rate_limit,
        created_by_id=rotated_by_id,
        default_rate_limit=api_key.rate_limit,
    )
