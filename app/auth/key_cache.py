"""API keys found recently, per process, so a burst of connections does not query each one.

Entries are keyed by the SHA-256 of the full key (the key itself is never held) and kept a few
seconds. Revoking or rotating a key announces it on the hub after the commit, and every process
forgets it at once; the TTL only bounds staleness if that announcement is lost. Unknown keys are
never cached: each guess still costs a lookup (and counts against the IP's rate limit).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import ApiKey, ApiKeyType
from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC

CHANNEL = "api_keys:changed"
MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    id: uuid.UUID
    organization_id: uuid.UUID
    type: ApiKeyType
    scopes: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    rate_limit: int
    expires_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeySnapshot:
        return cls(
            id=key.id,
            organization_id=key.organization_id,
            type=key.type,
            scopes=tuple(key.scopes),
            allowed_origins=tuple(key.allowed_origins),
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
        )


class KeyCache:
    def __init__(self, hub: Hub | None, ttl_s: float) -> None:
        self._hub = hub
        self._ttl_s = ttl_s
        self._keys: dict[str, tuple[KeySnapshot, float]] = {}

    async def start(self) -> None:
        if self._hub is not None:
            await self._hub.listen(CHANNEL, self._on_message)

    async def stop(self) -> None:
        if self._hub is not None:
            await self._hub.unlisten(CHANNEL, self._on_message)

    def get(self, key_hash: str) -> KeySnapshot | None:
        found = self._keys.get(key_hash)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            del self._keys[key_hash]
            return None
        return found[0]

    def put(self, key_hash: str, snapshot: KeySnapshot) -> None:
        if len(self._keys) >= MAX_KEYS:
            self._keys.pop(next(iter(self._keys)))
        self._keys[key_hash] = (snapshot, time.monotonic() + self._ttl_s)

    async def changed(self, key_id: uuid.UUID) -> None:
        """A key was revoked or rotated (call after the commit): every process forgets it."""
        self._forget(key_id)
        if self._hub is not None:
            await self._hub.publish(CHANNEL, str(key_id))

    def _forget(self, key_id: uuid.UUID) -> None:
        for key_hash in [h for h, (snapshot, _) in self._keys.items() if snapshot.id == key_id]:
            del self._keys[key_hash]

    def _on_message(self, message: str) -> None:
        if message == RESYNC:
            self._keys.clear()
            return
        with contextlib.suppress(ValueError):
            self._forget(uuid.UUID(message))
