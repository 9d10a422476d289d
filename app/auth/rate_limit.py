"""Per-API-key and per-IP rate limits (the `limits` library): Redis in production, memory otherwise."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.errors import RateLimited
from app.settings import Settings


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._storage: Storage
        if settings.redis_url:
            url = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self._storage = RedisStorage(
                url, implementation="redispy", key_prefix=f"{settings.redis_namespace}:ratelimit"
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_ip = parse(settings.ip_rate_limit)
        self._per_key: dict[int, RateLimitItem] = {}

    async def hit_ip(self, ip: str) -> None:
        await self._hit(self._per_ip, "ip", ip, "too many requests from this address")

    async def hit_key(self, api_key_id: str, per_minute: int) -> None:
        item = self._per_key.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        await self._hit(item, "key", api_key_id, f"API key rate limit ({per_minute}/minute) exceeded")

    async def _hit(self, item: RateLimitItem, *identifiers: str) -> None:
        message = identifiers[-1]
        if await self._limiter.hit(item, *identifiers[:-1]):
            return
        stats = await self._limiter.get_window_stats(item, *identifiers[:-1])
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(message, retry_after=retry_after)

    async def close(self) -> None:
        # MemoryStorage runs a timer thread; RedisStorage holds a connection pool.
        reset = getattr(self._storage, "reset", None)
        if isinstance(self._storage, MemoryStorage) and reset is not None:
            await reset()
