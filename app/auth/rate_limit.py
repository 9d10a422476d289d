"""Per-API-key and per-IP rate limits (the `limits` library): Redis in production, memory otherwise."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.errors import RateLimited
from app.realtime.redis_client import redis_pool
from app.settings import Settings

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._storage: Storage
        if settings.redis_url:
            url = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            pool = redis_pool(
                settings.redis_url,
                max_connections=settings.redis_max_connections,
                timeout_s=settings.redis_pool_timeout_s,
            )
            self._storage = RedisStorage(
                url,
                implementation="redispy",
                key_prefix=f"{settings.redis_namespace}:ratelimit",
                connection_pool=pool,  # type: ignore[arg-type]  # limits passes it to redis-py
            )
        else:
            self._storage = MemoryStorage()
        # Two counters per key and window, whatever the limit (a moving window keeps one entry
        # per hit: a million-per-minute limit would hold a million timestamps).
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._per_ip = parse(settings.ip_rate_limit)
        self._per_key: dict[int, RateLimitItem] = {}
        self._failed_logins = parse(settings.failed_login_limit)
        self._emails = parse(settings.email_request_limit)

    async def hit_ip(self, ip: str) -> None:
        await self._hit(self._per_ip, "ip", ip, "too many requests from this address")

    async def hit_key(self, api_key_id: str, per_minute: int) -> None:
        item = self._per_key.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        await self._hit(item, "key", api_key_id, f"API key rate limit ({per_minute}/minute) exceeded")

    async def check_failed_logins(self, account: str) -> None:
        """Refuse log-in attempts for an account that failed too often (password or one-time code
        guessing), whatever address they come from."""
        if not await self._limiter.test(self._failed_logins, "login", account):
            stats = await self._limiter.get_window_stats(self._failed_logins, "login", account)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited("too many failed sign-in attempts for this account", retry_after=retry_after)

    async def record_failed_login(self, account: str) -> None:
        await self._limiter.hit(self._failed_logins, "login", account)

    async def hit_email_request(self, address: str) -> None:
        """Cap the emails one address can be sent on request (reset, verification): no inbox
        flooding. Applied whether or not an account exists, so it reveals nothing."""
        await self._hit(
            self._emails, "email", address.strip().lower(), "too many emails requested for this address"
        )

    async def _hit(self, item: RateLimitItem, *identifiers: str) -> None:
        message = identifiers[-1]
        try:
            allowed = await self._limiter.hit(item, *identifiers[:-1])
        except Exception:
            # The limit store (Redis) is briefly unreachable: serve rather than refuse everyone.
            log.warning("rate limit store unavailable; allowing the request", exc_info=True)
            return
        if allowed:
            return
        stats = await self._limiter.get_window_stats(item, *identifiers[:-1])
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(message, retry_after=retry_after)

    async def close(self) -> None:
        # The memory storage expires entries from a background task: stop it with the app.
        timer = getattr(self._storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
