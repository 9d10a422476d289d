"""Room housekeeping: archive rooms that stayed empty longer than the configured TTL (FR-3.6)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, func, or_, update

from app.db.types import utcnow
from app.rooms.models import Room, RoomStatus
from workers.registry import job
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@job(queue="maintenance", max_retries=3)
async def archive_idle_rooms(runtime: WorkerRuntime) -> int:
    """Rooms are marked active by every presence flush while someone is in them, so a room whose
    last activity is older than the TTL is empty and has been for that long."""
    cutoff = utcnow() - timedelta(days=runtime.settings.room_idle_archive_days)
    async with runtime.unit_of_work() as uow:
        result = await uow.session.execute(
            update(Room)
            .where(
                Room.status == RoomStatus.ACTIVE,
                or_(
                    Room.last_active_at < cutoff,
                    and_(Room.last_active_at.is_(None), Room.inserted_at < cutoff),  # type: ignore[union-attr]
                ),
            )
            .values(status=RoomStatus.ARCHIVED, archived_at=func.now())
        )
        archived = result.rowcount or 0  # type: ignore[attr-defined]
    if archived:
        log.info("archived %d idle rooms", archived)
    return archived
