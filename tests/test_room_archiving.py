"""Rooms empty for longer than the TTL are archived by a scheduled job (FR-3.6)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.db.types import utcnow
from app.rooms.models import Room, RoomStatus
from app.settings import Settings
from tests import factories
from tests.gql import GQL, create_org, sign_up
from workers.broker import JobQueue
from workers.rooms import archive_idle_rooms
from workers.scheduler import build_scheduler


async def test_idle_rooms_are_archived_and_busy_ones_kept(
    anon: GQL, app, session_factory, running_worker
) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org = uuid.UUID(await create_org(dev))
    long_ago = utcnow() - timedelta(days=45)
    rooms = {
        "idle": factories.room_in(org, last_active_at=long_ago),
        "never used": factories.room_in(org, inserted_at=long_ago),
        "recent": factories.room_in(org, last_active_at=utcnow() - timedelta(days=2)),
        "new": factories.room_in(org),
    }
    await factories.add(session_factory, *rooms.values())
    jobs: JobQueue = running_worker
    await jobs.enqueue(archive_idle_rooms)
    statuses: dict[str, RoomStatus] = {}
    for _ in range(100):
        async with session_factory() as session:
            by_id = {r.id: r.status for r in (await session.execute(select(Room))).scalars()}
        statuses = {name: by_id[room.id] for name, room in rooms.items()}
        if statuses["idle"] == RoomStatus.ARCHIVED:
            break
        await asyncio.sleep(0.1)
    assert statuses == {
        "idle": RoomStatus.ARCHIVED,
        "never used": RoomStatus.ARCHIVED,
        "recent": RoomStatus.ACTIVE,
        "new": RoomStatus.ACTIVE,
    }


def test_the_scheduler_runs_the_periodic_jobs(settings: Settings) -> None:
    jobs = JobQueue(settings)
    try:
        scheduler = build_scheduler(jobs, settings.model_copy(update={"room_archive_check_s": 60}))
        planned = {job.id: job.trigger.interval.total_seconds() for job in scheduler.get_jobs()}
    finally:
        jobs.close()
    assert planned == {"archive_idle_rooms": 60.0, "purge_expired": settings.purge_interval_s}
