"""Redis clients with a bounded pool that waits: a burst of commands queues for a connection
instead of failing with MaxConnectionsError (redis-py's default pool raises past 100)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_TIMEOUT_S = 10.0


def redis_client(url: str, **pool_options: Any) -> aioredis.Redis:
    """A client on its own `redis_pool(url, **pool_options)`; closing the client closes the pool."""
    return aioredis.Redis.from_pool(redis_pool(url, **pool_options))


def redis_pool(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retry: bool = True,
) -> aioredis.BlockingConnectionPool:
    """`retry`: after a Redis restart pooled connections are dead, so commands retry on a fresh
    one. The pub/sub transport turns it off: it must see the loss, to tell its listeners to resync
    (redis-py would otherwise resubscribe silently, and messages sent meanwhile would be lost)."""
    options = {
        "retry": Retry(ExponentialBackoff(cap=1.0), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 10,
    }
    return aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s, **(options if retry else {})
    )
