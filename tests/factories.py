"""Rows for tests, written through a real session."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Membership, MembershipRole, MembershipStatus, Organization
from app.rooms.models import Room


async def add(session_factory: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    async with session_factory() as session:
        session.add_all(rows)
        await session.commit()


def organization(**values: Any) -> Organization:
    suffix = uuid.uuid4().hex[:8]
    return Organization(**{"name": f"Org {suffix}", "slug": f"org-{suffix}", **values})


def room(org: Organization, **values: Any) -> Room:
    suffix = uuid.uuid4().hex[:8]
    return Room(**{"organization_id": org.id, "name": f"Room {suffix}", "slug": f"room-{suffix}", **values})


def room_in(organization_id: uuid.UUID, **values: Any) -> Room:
    suffix = uuid.uuid4().hex[:8]
    return Room(
        **{"organization_id": organization_id, "name": f"Room {suffix}", "slug": f"room-{suffix}", **values}
    )


def active_member(
    organization_id: str, user_id: str, role: MembershipRole = MembershipRole.MEMBER
) -> Membership:
    """A developer who has joined the organization (as if they accepted an invitation)."""
    return Membership(
        organization_id=uuid.UUID(organization_id),
        user_id=uuid.UUID(user_id),
        role=role,
        status=MembershipStatus.ACTIVE,
    )
