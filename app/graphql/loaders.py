"""DataLoaders built per request, so relations are fetched in one query per batch (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from app.accounts.models import Organization

T = TypeVar("T")


class Loaders:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self.organization_by_id: DataLoader[uuid.UUID, Organization | None] = DataLoader(
            load_fn=lambda ids: self._by_id(Organization, ids)
        )

    async def _by_id(self, model: Any, ids: Sequence[uuid.UUID]) -> list[Any]:
        async with self._session_factory() as session:
            rows = (await session.execute(select(model).where(model.id.in_(ids)))).scalars()
            found = {row.id: row for row in rows}
        return [found.get(id_) for id_ in ids]
