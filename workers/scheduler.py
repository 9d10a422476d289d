"""Periodic jobs. One scheduler enqueues them: inside `syncforge serve` in the embedded default,
the `syncforge scheduler` process in production (run exactly one)."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.settings import Settings
from workers.broker import JobQueue
from workers.maintenance import purge_expired
from workers.rooms import archive_idle_rooms


def build_scheduler(jobs: JobQueue, settings: Settings) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    periodic = {
        "archive_idle_rooms": (archive_idle_rooms, settings.room_archive_check_s),
        "purge_expired": (purge_expired, settings.purge_interval_s),
    }
    for name, (fn, seconds) in periodic.items():
        scheduler.add_job(
            jobs.enqueue,
            "interval",
            args=[fn],
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
        )
    return scheduler
