"""Jobs run by the in-process worker (embedded) or by `syncforge worker` processes (Redis)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.accounts.credentials_models import UserToken, UserTokenPurpose
from app.accounts.models import User
from app.db.types import utcnow
from app.notifications.models import Notification, NotificationType
from app.settings import Settings
from tests import factories
from tests.backends import IS_POSTGRES
from workers.broker import JobQueue
from workers.maintenance import purge_expired


async def _seed(session_factory) -> None:  # type: ignore[no-untyped-def]
    user = User(email="a@example.com")
    now = utcnow()
    rows = [
        Notification(
            user_id=user.id,
            type=NotificationType.MENTION,
            title="old",
            inserted_at=now - timedelta(days=31),
        ),
        Notification(
            user_id=user.id,
            type=NotificationType.MENTION,
            title="recent",
            inserted_at=now - timedelta(days=29),
        ),
    ]
    await factories.add(session_factory, user)
    await factories.add(session_factory, *rows)
    await factories.add(
        session_factory,
        UserToken(
            user_id=user.id,
            purpose=UserTokenPurpose.RESET_PASSWORD,
            token_hash="expired",
            expires_at=now - timedelta(days=2),
        ),
        UserToken(
            user_id=user.id,
            purpose=UserTokenPurpose.RESET_PASSWORD,
            token_hash="live",
            expires_at=now + timedelta(hours=1),
        ),
    )


async def _wait_for_titles(session_factory, expected: set[str]) -> set[str]:  # type: ignore[no-untyped-def]
    titles: set[str] = set()
    for _ in range(150):
        async with session_factory() as session:
            titles = set((await session.execute(select(Notification.title))).scalars())
        if titles == expected:
            break
        await asyncio.sleep(0.1)
    return titles


async def test_purge_job_runs_through_the_configured_queue(app, session_factory, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    await _seed(session_factory)
    jobs: JobQueue = app.state.syncforge.jobs
    assert jobs.is_embedded is (settings.redis_url is None)
    worker = None
    if not jobs.is_embedded:
        # Production mode: the API process only enqueues; a separate `syncforge worker` consumes.
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "SYNCFORGE_REDIS_NAMESPACE": settings.redis_namespace,
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--threads", "1"],
            env=env,
            cwd=Path(__file__).parent,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        await jobs.enqueue(purge_expired)
        assert await _wait_for_titles(session_factory, {"recent"}) == {"recent"}
        async with session_factory() as session:
            tokens = set((await session.execute(select(UserToken.token_hash))).scalars())
        assert tokens == {"live"}  # expired credentials go too
    finally:
        if worker is not None:
            worker.terminate()
            _, stderr = worker.communicate(timeout=30)
            assert worker.returncode == 0, stderr


@pytest.mark.skipif(not IS_POSTGRES, reason="the Redis queue exists only in production mode")
async def test_enqueued_jobs_wait_in_redis_until_a_worker_runs(app, session_factory) -> None:  # type: ignore[no-untyped-def]
    await _seed(session_factory)
    jobs: JobQueue = app.state.syncforge.jobs
    await jobs.enqueue(purge_expired)
    await asyncio.sleep(0.5)
    async with session_factory() as session:
        count = (await session.execute(select(func.count()).select_from(Notification))).scalar_one()
    assert count == 2  # nothing in the API process consumed it
    jobs.broker.flush_all()
