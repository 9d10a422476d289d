"""Start-up checks that turn a wrong or unreachable setting into one line naming it."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import create_engine
from app.settings import ConfigError, Settings

TIMEOUT_S = 5.0


def _reason(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text_}" if text_ else type(exc).__name__


async def check_database(settings: Settings) -> None:
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = create_engine(settings)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL: cannot connect to {where} ({_reason(exc)})") from None
    finally:
        await engine.dispose()


async def check_redis(settings: Settings) -> None:
    if not settings.redis_url:
        return
    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_S)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await client.ping()
    except Exception as exc:
        raise ConfigError(f"REDIS_URL: cannot connect to {settings.redis_url} ({_reason(exc)})") from None
    finally:
        await client.aclose()


async def check_dependencies(settings: Settings) -> None:
    await check_database(settings)
    await check_redis(settings)
