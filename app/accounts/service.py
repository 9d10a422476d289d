"""Organization and account operations (reads for now; the accounts issue adds the rest)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Organization
from app.db.pagination import Page, paginate
from app.errors import NotFound, ValidationFailed


async def get_organization(
    session: AsyncSession, *, id: uuid.UUID | None = None, slug: str | None = None
) -> Organization:
    if (id is None) == (slug is None):
        raise ValidationFailed("give exactly one of id and slug", field="id")
    condition = Organization.id == id if id is not None else Organization.slug == slug
    query = select(Organization).where(condition)
    organization = (await session.execute(query)).scalar_one_or_none()
    if organization is None:
        raise NotFound("organization")
    return organization


async def list_organizations(session: AsyncSession, *, first: int, after: str | None) -> Page[Organization]:
    return await paginate(session, select(Organization), Organization, first=first, after=after)
