"""API keys found recently, per process, so a burst of connections does not query each one.

Entries are keyed by the SHA-256 of the full key (the key itself is never held) and kept a few
seconds. Revoking or rotating a key announces it on the hub after the commit, and every process
forgets it at once; the TTL only bounds staleness if that announcement is lost. Unknown keys are
never cached: each guess still costs a lookup (and counts against the IP's rate limit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import ApiKey, ApiKeyType
from app.realtime.announced import MISSING, Announcements, TTLCache
from app.realtime.hub import Hub

CHANNEL = "api_keys:changed"


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
        self._keys: TTLCache[str, KeySnapshot] = TTLCache(ttl_s)
        self._announcements = Announcements(hub, CHANNEL, self._forget)
        # Told of every change (None: maybe missed some), after the cache forgot it.
        self.on_change: list[Callable[[uuid.UUID | None], None]] = []

    async def start(self) -> None:
        await self._announcements.start()

    async def stop(self) -> None:
        await self._announcements.stop()

    def get(self, key_hash: str) -> KeySnapshot | None:
        found = self._keys.get(key_hash)
        return None if found is MISSING else found  # type: ignore[return-value]

    def put(self, key_hash: str, snapshot: KeySnapshot) -> None:
        self._keys.put(key_hash, snapshot)

    async def changed(self, key_id: uuid.UUID) -> None:
        """A key was revoked or rotated (call after the commit): every process forgets it."""
        await self._announcements.announce(key_id)

    def _forget(self, key_id: uuid.UUID | None) -> None:
        if key_id is None:
            self._keys.clear()
        else:
            for key_hash, snapshot in self._keys.items():
                if snapshot.id == key_id:
                    self._keys.pop(key_hash)
        for callback in self.on_change:
            callback(key_id)
