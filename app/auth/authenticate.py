"""Turn the credentials of a request or WebSocket connection into a Principal.

HTTP: `Authorization: Bearer <developer access token | sk_live_... | end-user token>` and, for
browsers, `X-API-Key: pk_live_...`. WebSocket: the `connection_init` payload
`{"apiKey": ..., "token": ...}` or `{"accessToken": ...}`.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts import api_keys, end_user_tokens
from app.accounts.models import ApiKeyType
from app.auth.key_cache import KeyCache, KeySnapshot
from app.auth.principal import (
    Anonymous,
    Developer,
    Principal,
    PublishableKeyClient,
    SecretKeyClient,
)
from app.auth.rate_limit import RateLimits
from app.auth.usage import UsageRecorder
from app.db.types import utcnow
from app.errors import Forbidden, Unauthorized
from app.input_guard import problem
from app.security import jwt
from app.security.keys import Keys
from app.security.tokens import hash_token


@dataclass(frozen=True)
class Credentials:
    ip: str
    bearer: str | None = None
    api_key: str | None = None
    origin: str | None = None


class Authenticator:
    def __init__(
        self,
        keys: Keys,
        session_factory: async_sessionmaker[AsyncSession],
        usage: UsageRecorder,
        rate_limits: RateLimits,
        key_cache: KeyCache | None = None,
    ) -> None:
        self.keys = keys
        self.key_cache = key_cache or KeyCache(None, 0.0)
        self._session_factory = session_factory
        self._usage = usage
        self._rate_limits = rate_limits

    async def authenticate(self, credentials: Credentials) -> Principal:
        await self._rate_limits.hit_ip(credentials.ip)
        bearer, key = credentials.bearer, credentials.api_key
        if any(value is not None and problem(value) for value in (bearer, key, credentials.origin)):
            # (a lone surrogate cannot even be hashed to be looked up: no credential holds one)
            raise Unauthorized("invalid credentials")
        if key is None and bearer is not None and api_keys.parse(bearer) is not None:
            key, bearer = bearer, None
        if key is not None:
            return await self._with_api_key(key, bearer, credentials.origin)
        if bearer is not None:
            return self._developer(bearer)
        return Anonymous()

    def _developer(self, token: str) -> Developer:
        try:
            claims = jwt.decode(self.keys.jwt, token, audience=jwt.DEVELOPER_AUDIENCE)
            return Developer(user_id=uuid.UUID(claims["sub"]), expires_at=float(claims["exp"]))
        except (jwt.InvalidToken, ValueError):
            raise Unauthorized(
                "invalid or expired access token (end-user tokens also need a publishable key)"
            ) from None

    async def _find_key(self, key: str) -> KeySnapshot | None:
        if api_keys.parse(key) is None:
            return None
        key_hash = hash_token(key)
        snapshot = self.key_cache.get(key_hash)
        if snapshot is None:
            async with self._session_factory() as session:
                found = await api_keys.find_active(session, key)
            if found is None:
                return None
            snapshot = KeySnapshot.of(found)
            self.key_cache.put(key_hash, snapshot)
        if snapshot.expires_at is not None and snapshot.expires_at <= utcnow():
            return None
        return snapshot

    async def _with_api_key(self, key: str, token: str | None, origin: str | None) -> Principal:
        api_key = await self._find_key(key)
        if api_key is None:
            raise Unauthorized("invalid, revoked or expired API key")
        if not api_keys.origin_allowed(api_key, origin):
            raise Forbidden(f"origin {origin or '(none)'} is not allowed for this publishable key")
        await self._rate_limits.hit_key(str(api_key.id), api_key.rate_limit)
        self._usage.record(api_key.id)
        scopes = _scopes(tuple(api_key.scopes))
        key_expiry = api_key.expires_at.timestamp() if api_key.expires_at is not None else None
        limit = api_key.rate_limit
        if api_key.type == ApiKeyType.SECRET:
            return SecretKeyClient(api_key.organization_id, api_key.id, scopes, key_expiry, limit)
        if token is None:
            return PublishableKeyClient(api_key.organization_id, api_key.id, scopes, key_expiry, limit)
        end_user = end_user_tokens.principal_from_token(
            self.keys,
            token,
            organization_id=api_key.organization_id,
            api_key_id=api_key.id,
            scopes=scopes,
        )
        if key_expiry is not None and (end_user.expires_at is None or key_expiry < end_user.expires_at):
            end_user = replace(end_user, expires_at=key_expiry)
        return replace(end_user, rate_limit=limit)


@functools.lru_cache(maxsize=1024)
def _scopes(scopes: tuple[str, ...]) -> frozenset[str]:
    """One shared set per distinct scope list: every open connection's principal holds one."""
    return frozenset(scopes)
