"""Keyset pagination on (inserted_at, id): stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ValidationFailed

T = TypeVar("T")

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def encode_cursor(inserted_at: datetime, id_: uuid.UUID) -> str:
    raw = f"{inserted_at.isoformat()}|{id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, id_ = raw.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(id_)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("invalid cursor", field="after") from exc


async def paginate(
    session: AsyncSession, query: Select[Any], model: Any, *, first: int, after: str | None
) -> Page[Any]:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"first must be between 1 and {MAX_PAGE_SIZE}", field="first")
    if after is not None:
        stamp, last_id = decode_cursor(after)
        query = query.where(
            or_(model.inserted_at > stamp, and_(model.inserted_at == stamp, model.id > last_id))
        )
    query = query.order_by(model.inserted_at, model.id).limit(first + 1)
    rows = list((await session.execute(query)).scalars())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(row.inserted_at, row.id) for row in items],
        has_next_page=len(rows) > first,
    )
