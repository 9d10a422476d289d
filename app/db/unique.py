"""Unique-constraint violations as CONFLICT: a check-then-insert races with a concurrent writer, and
the database's constraint is the only check that cannot be raced, so its violation is an answer
(CONFLICT, naming the field), not an internal error.

The field is the constraint's last column: unique constraints here list their scope first
(`organization_id, slug`; `room_id, slug`), then the value a client chose.
"""

from __future__ import annotations

from sqlalchemy import Index, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import metadata
from app.errors import Conflict

PG_UNIQUE_VIOLATION = "23505"
SQLITE_UNIQUE_ERRORS = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
SQLITE_UNIQUE_PREFIX = "UNIQUE constraint failed: "


def unique_conflict(error: IntegrityError, message: str | None = None) -> Conflict | None:
    """The CONFLICT a unique violation means, or None when `error` is another integrity error."""
    columns = _violated_columns(error.orig)
    if columns is None:
        return None
    field = columns[-1] if columns else None
    if message is None:
        message = f"this {field} is already taken" if field else "this already exists"
    return Conflict(message, field=field) if field else Conflict(message)


async def flush_unique(session: AsyncSession, message: str, *, savepoint: bool = False) -> None:
    """Flush; a unique violation (a concurrent writer took the value after our check) becomes
    CONFLICT with `message`. `savepoint`: the session stays usable after it."""
    try:
        if savepoint:
            async with session.begin_nested():
                await session.flush()
        else:
            await session.flush()
    except IntegrityError as error:
        conflict = unique_conflict(error, message)
        if conflict is None:
            raise
        raise conflict from error


def _violated_columns(orig: BaseException | None) -> tuple[str, ...] | None:
    """The columns of the violated unique constraint (empty if unknown), or None if not one."""
    driver = getattr(orig, "driver_exception", orig)  # asyncpg's error under SQLAlchemy's adapter
    if getattr(driver, "sqlstate", None) == PG_UNIQUE_VIOLATION:
        return _constraint_columns().get(getattr(driver, "constraint_name", None) or "", ())
    if getattr(driver, "sqlite_errorname", None) in SQLITE_UNIQUE_ERRORS:
        # "UNIQUE constraint failed: rooms.organization_id, rooms.slug" (or: index 'name')
        text = str(driver)
        if not text.startswith(SQLITE_UNIQUE_PREFIX):
            return ()
        failed = text[len(SQLITE_UNIQUE_PREFIX) :]
        if failed.startswith("index "):
            return _constraint_columns().get(failed[len("index ") :].strip("'"), ())
        return tuple(name.rpartition(".")[2] for name in failed.split(", "))
    return None


def _constraint_columns() -> dict[str, tuple[str, ...]]:
    """Unique constraint and unique index names (PostgreSQL reports those) -> their columns.
    Built on each call: violations are rare, and every model is surely imported by then."""
    found: dict[str, tuple[str, ...]] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint) and constraint.name:
                found[str(constraint.name)] = tuple(column.name for column in constraint.columns)
        for index in table.indexes:
            if isinstance(index, Index) and index.unique and index.name:
                found[str(index.name)] = tuple(column.name for column in index.columns)
    return found
