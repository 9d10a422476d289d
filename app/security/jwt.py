"""JWTs with one pinned algorithm and every registered claim required."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

from app.db.types import utcnow

ALGORITHM = "HS256"
ISSUER = "syncforge"
DEVELOPER_AUDIENCE = "syncforge:developer"
END_USER_AUDIENCE = "syncforge:end-user"
REQUIRED = ["iss", "aud", "exp", "iat", "sub"]
LEEWAY_S = 5  # clock skew tolerated on exp


class InvalidToken(Exception):
    pass


def encode(key: bytes, *, subject: str, audience: str, ttl: timedelta, **claims: Any) -> str:
    now = utcnow()
    payload = {"iss": ISSUER, "aud": audience, "sub": subject, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def decode(key: bytes, token: str, *, audience: str) -> dict[str, Any]:
    try:
        return jwt.decode(  # type: ignore[no-any-return]
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require": REQUIRED},
            leeway=LEEWAY_S,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
