"""Which backend this test run talks to, and how to make a fresh database on it.

SYNCFORGE_TEST_BACKEND=sqlite (default): SQLite files, in-memory pub/sub, in-process jobs.
SYNCFORGE_TEST_BACKEND=postgres: real PostgreSQL and Redis (the production mode).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

BACKEND = os.environ.get("SYNCFORGE_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"SYNCFORGE_TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")

PG_ADMIN_URL = os.environ.get("SYNCFORGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SYNCFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

IS_POSTGRES = BACKEND == "postgres"


@asynccontextmanager
async def fresh_database(tmp_dir: Path, backend: str = BACKEND) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database that is dropped afterwards."""
    name = f"syncforge_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_dir / (name + '.db')}"
        return
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield (
            make_url(PG_ADMIN_URL)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
