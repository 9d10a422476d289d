"""Turn the credentials of a request or WebSocket connection into a Principal.

HTTP: `Authorization: Bearer <developer access token | sk_live_... | end-user token>` and, for
browsers, `X-API-Key: pk_live_...`. WebSocket: the `connection_init` payload
`{"apiKey": ..., "token": ...}` or `{"accessToken": ...}`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts import api_keys, end_user_tokens
from app.accounts.models import ApiKeyType
from app.auth.principal import (
    Anonymous,
    Developer,
    Principal,
    PublishableKeyClient,
    SecretKeyClient,
)
from app.auth.rate_limit import RateLimits
from app.auth.usage import UsageRecorder
from app.errors import Forbidden, Unauthorized
from app.security import jwt
from app.security.keys import Keys


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
    ) -> None:
        self.keys = keys
        self._session_factory = session_factory
        self._usage = usage
        self._rate_limits = rate_limits

    async def authenticate(self, credentials: Credentials) -> Principal:
        await self._rate_limits.hit_ip(credentials.ip)
        bearer, key = credentials.bearer, credentials.api_key
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
            return Developer(user_id=uuid.UUID(claims["sub"]))
        except (jwt.InvalidToken, ValueError):
            raise Unauthorized(
                "invalid or expired access token (end-user tokens also need a publishable key)"
            ) from None

    async def _with_api_key(self, key: str, token: str | None, origin: str | None) -> Principal:
        async with self._session_factory() as session:
            api_key = await api_keys.find_active(session, key)
        if api_key is None:
            raise Unauthorized("invalid, revoked or expired API key")
        if not api_keys.origin_allowed(api_key, origin):
            raise Forbidden(f"origin {origin or '(none)'} is not allowed for this publishable key")
        await self._rate_limits.hit_key(str(api_key.id), api_key.rate_limit)
        self._usage.record(api_key.id)
        scopes = frozenset(api_key.scopes)
        if api_key.type == ApiKeyType.SECRET:
            return SecretKeyClient(api_key.organization_id, api_key.id, scopes)
        if token is None:
            return PublishableKeyClient(api_key.organization_id, api_key.id, scopes)
        return end_user_tokens.principal_from_token(
            self.keys,
            token,
            organization_id=api_key.organization_id,
            api_key_id=api_key.id,
            scopes=scopes,
        )
