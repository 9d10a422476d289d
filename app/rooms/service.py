"""Room operations (reads for now; the realtime issue adds the rest)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.pagination import Page, paginate
from app.errors import NotFound
from app.rooms.models import Room, RoomStatus


async def get_room(session: AsyncSession, room_id: uuid.UUID) -> Room:
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("room")
    return room


async def get_room_by_slug(session: AsyncSession, organization_id: uuid.UUID, slug: str) -> Room:
    query = select(Room).where(Room.organization_id == organization_id, Room.slug == slug)
    room = (await session.execute(query)).scalar_one_or_none()
    if room is None:
        raise NotFound("room")
    return room


async def list_rooms(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    status: RoomStatus | None,
    first: int,
    after: str | None,
) -> Page[Room]:
    query = select(Room).where(Room.organization_id == organization_id)
    if status is not None:
        query = query.where(Room.status == status)
    return await paginate(session, query, Room, first=first, after=after)
