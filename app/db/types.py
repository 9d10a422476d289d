"""Column types and field helpers shared by every domain's tables.

They keep the same models working on SQLite and PostgreSQL: UUIDs (native on PostgreSQL), timezone-aware
timestamps (SQLite forgets the zone, so values are read back as UTC), JSON maps (JSONB on PostgreSQL) and
enums stored as constrained strings (no native enum types to migrate).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that is always UTC when it comes back, on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use timezone-aware datetimes (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# For nullable maps: Python None becomes SQL NULL instead of the JSON value 'null'.
NullableJSONType = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
BytesType = sa.LargeBinary()


def id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def fk_field(target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = False) -> Any:
    """A UUID foreign key. Required references cascade; optional ones (authors, actors) are set null."""
    return Field(
        default=None,
        foreign_key=target,
        nullable=nullable,
        ondelete="SET NULL" if nullable else ondelete,
        index=index,
    )


def timestamp_field(*, nullable: bool = True, on_update: bool = False, now: bool = False) -> Any:
    kwargs: dict[str, Any] = {"onupdate": utcnow} if on_update else {}
    return Field(
        default_factory=utcnow if now else (lambda: None),
        sa_type=UTCDateTime,
        nullable=nullable,
        sa_column_kwargs=kwargs,
    )


def json_field(default_factory: Callable[[], Any] = dict, *, nullable: bool = False) -> Any:
    sa_type = NullableJSONType if nullable else JSONType
    return Field(default_factory=default_factory, sa_type=sa_type, nullable=nullable)


def enum_field(enum_cls: type[enum.StrEnum], default: Any = None, *, nullable: bool = False) -> Any:
    """A string column holding one of the enum's values, with a CHECK constraint on both databases."""
    sa_type = sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_cls),
        values_callable=lambda members: [member.value for member in members],
        name=_snake(enum_cls.__name__),
        validate_strings=True,
    )
    return Field(default=default, sa_type=sa_type, nullable=nullable)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
