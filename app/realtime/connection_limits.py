"""Per-connection limits on what one socket pushes into a room.

Cursor moves, presence updates, broadcast events, document and awareness updates fan out to every
member of a room (document updates are also durable writes), so one client sending as fast as it
can must not flood them. Each kind has a token bucket per
connection: a sustained rate, plus a burst of BURST_S seconds' worth on top (clients throttle to
the room's tick; a burst after a reconnect is normal). Buckets live in memory, on the connection:
this costs no round trip, and a connection only ever talks to one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.errors import RateLimited
from app.settings import Settings

BURST_S = 2.0


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float

    @property
    def burst(self) -> float:
        return max(1.0, self.per_s * BURST_S)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class ConnectionLimits:
    __slots__ = ("_buckets", "_rates")

    def __init__(self, rates: dict[str, Rate]) -> None:
        self._rates = rates  # shared by every connection of the process
        self._buckets: dict[str, _Bucket] | None = None  # most connections never push anything

    @classmethod
    def rates(cls, settings: Settings) -> dict[str, Rate]:
        return {
            "moves": Rate(settings.ws_moves_per_s),
            "presence updates": Rate(settings.ws_presence_updates_per_s),
            "broadcasts": Rate(settings.ws_broadcasts_per_s),
            "document updates": Rate(settings.ws_document_updates_per_s),
            "awareness updates": Rate(settings.ws_awareness_updates_per_s),
        }

    def take(self, kind: str) -> None:
        """Spend one message of `kind`; RATE_LIMITED (with retryAfter, seconds) when there is none."""
        rate = self._rates[kind]
        now = time.monotonic()
        if self._buckets is None:
            self._buckets = {}
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = _Bucket(rate.burst, now)
        else:
            bucket.tokens = min(rate.burst, bucket.tokens + (now - bucket.updated) * rate.per_s)
            bucket.updated = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / rate.per_s
            raise RateLimited(
                f"too many {kind} on this connection (at most {rate.per_s:g} per second)",
                retry_after=round(max(wait, 0.001), 3),
                limit=f"{kind}:connection",
            )
        bucket.tokens -= 1.0
