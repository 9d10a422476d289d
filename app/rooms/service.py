"""Room operations: validate, create, read, list, update, archive and delete (FR-3).

Services flush and never commit; the caller's unit of work owns the transaction. Validation errors
name the GraphQL input field they concern (`field`), since that is what a client can fix.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Organization
from app.db.pagination import Page, paginate
from app.db.types import utcnow
from app.db.unique import flush_unique
from app.errors import Conflict, NotFound, PlanLimitExceeded, ValidationFailed
from app.rooms.models import Room, RoomAccess, RoomStatus, RoomType, default_room_features
from app.security.passwords import hash_password

# Like organization slugs, plus ':' '_' '.' inside (developers use their own ids, e.g. "team-42:design").
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9:_.-]{0,126}[a-z0-9])?$")
FEATURE_KEYS = frozenset(default_room_features())
MAX_METADATA_BYTES = 16_384
SLUG_TAKEN = "this slug is taken in this organization"
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2_000
MAX_SEARCH_CHARS = 100
PASSWORD_CHARS = (4, 256)
# (attribute, GraphQL field, minimum, maximum)
LIMITS = (
    ("max_participants", "maxParticipants", 1, 10_000),
    ("presence_ttl_s", "presenceTtlSeconds", 5, 3_600),
    ("cursor_tick_ms", "cursorTickMs", 16, 1_000),
)
# What update_room accepts; a key present means "set it", None clears the optional ones.
UPDATABLE = frozenset(
    {"name", "slug", "description", "type", "access", "password", "features", "metadata"}
    | {attribute for attribute, *_ in LIMITS}
)


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise ValidationFailed(
            "slug must be 1-128 lowercase letters, digits, '-', ':', '_' or '.',"
            " starting and ending with a letter or digit",
            field="slug",
        )
    return slug


def validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise ValidationFailed(f"name must be 1 to {MAX_NAME_CHARS} characters", field="name")
    return name


def validate_description(description: str | None) -> str | None:
    if description is None or not description.strip():
        return None
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ValidationFailed(
            f"description must be at most {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    return description.strip()


def validate_features(value: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    """`value` merged over `base`: only the known flags, each a boolean."""
    if not isinstance(value, dict):
        raise ValidationFailed("features must be a JSON object of booleans", field="features")
    unknown = set(value) - FEATURE_KEYS
    if unknown:
        raise ValidationFailed(
            f"unknown features {sorted(unknown)}; known: {sorted(FEATURE_KEYS)}", field="features"
        )
    if not all(isinstance(flag, bool) for flag in value.values()):
        raise ValidationFailed("every feature flag must be true or false", field="features")
    return {**base, **value}


def validate_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object", field="metadata")
    if len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        raise ValidationFailed(f"metadata must be at most {MAX_METADATA_BYTES} bytes", field="metadata")
    return value


def validate_limit(attribute: str, value: Any) -> int:
    _, field, low, high = next(limit for limit in LIMITS if limit[0] == attribute)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(f"{field} must be between {low} and {high}", field=field)
    return value


def validate_password(password: str) -> str:
    low, high = PASSWORD_CHARS
    if not low <= len(password) <= high:
        raise ValidationFailed(f"password must be {low} to {high} characters", field="password")
    return password


async def _hash(password: str) -> str:
    # argon2 costs tens of milliseconds of CPU: keep it off the event loop.
    return await hash_password(validate_password(password))


async def get_room(session: AsyncSession, room_id: uuid.UUID) -> Room:
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("room")
    return room


async def get_room_by_slug(session: AsyncSession, organization_id: uuid.UUID, slug: str) -> Room:
    query = select(Room).where(Room.organization_id == organization_id, Room.slug == slug.strip().lower())
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
    type: RoomType | None = None,
    search: str | None = None,
) -> Page[Room]:
    """Oldest first. `search` matches a case-insensitive substring of the name or the slug
    (ILIKE on PostgreSQL; lower() LIKE lower() on SQLite, where only ASCII letters fold)."""
    query = select(Room).where(Room.organization_id == organization_id)
    if status is not None:
        query = query.where(Room.status == status)
    if type is not None:
        query = query.where(Room.type == type)
    term = (search or "").strip()
    if len(term) > MAX_SEARCH_CHARS:
        raise ValidationFailed(f"search must be at most {MAX_SEARCH_CHARS} characters", field="search")
    if term:
        query = query.where(
            or_(
                Room.name.icontains(term, autoescape=True),  # type: ignore[attr-defined]
                Room.slug.icontains(term, autoescape=True),  # type: ignore[attr-defined]
            )
        )
    return await paginate(session, query, Room, first=first, after=after)


async def _locked_organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    """The organization, locked for the rest of the transaction, so that concurrent creations in it
    count rooms (and check slugs) one at a time. A no-op UPDATE rather than SELECT ... FOR UPDATE:
    on PostgreSQL both lock the row, but SQLite has no row locks and pysqlite begins a transaction
    only at the first write, so only a write takes SQLite's database lock before we count."""
    locked = await session.execute(
        update(Organization)
        .where(Organization.id == organization_id)  # type: ignore[arg-type]
        .values(updated_at=Organization.updated_at)  # itself: no change, and no onupdate either
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("organization")
    return (
        await session.execute(select(Organization).where(Organization.id == organization_id))
    ).scalar_one()


async def _guard_room_limit(session: AsyncSession, organization_id: uuid.UUID) -> None:
    org = await _locked_organization(session, organization_id)
    current = int(
        (
            await session.execute(
                select(func.count())
                .select_from(Room)
                .where(Room.organization_id == organization_id, Room.status == RoomStatus.ACTIVE)
            )
        ).scalar_one()
    )
    if current >= org.max_rooms:
        raise PlanLimitExceeded(
            f"your plan allows {org.max_rooms} active rooms; archive or delete one, or upgrade",
            limit=org.max_rooms,
            current=current,
        )


async def _guard_slug_free(
    session: AsyncSession, organization_id: uuid.UUID, slug: str, room_id: uuid.UUID | None = None
) -> None:
    query = select(Room.id).where(Room.organization_id == organization_id, Room.slug == slug)
    if room_id is not None:
        query = query.where(Room.id != room_id)
    if (await session.execute(query)).first():
        raise Conflict(SLUG_TAKEN, field="slug")


async def _flush(session: AsyncSession) -> None:
    await flush_unique(session, SLUG_TAKEN)  # a concurrent writer may have taken it since our check


async def create_room(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    name: str,
    slug: str,
    description: str | None = None,
    type: RoomType = RoomType.DOCUMENT,
    access: RoomAccess = RoomAccess.PRIVATE,
    password: str | None = None,
    features: Any = None,
    metadata: Any = None,
    max_participants: int = 100,
    presence_ttl_s: int = 30,
    cursor_tick_ms: int = 50,
    created_by_id: uuid.UUID | None = None,
) -> Room:
    room = Room(
        organization_id=organization_id,
        name=validate_name(name),
        slug=validate_slug(slug),
        description=validate_description(description),
        type=type,
        access=access,
        features=validate_features(features if features is not None else {}, default_room_features()),
        metadata_=validate_metadata(metadata if metadata is not None else {}),
        max_participants=validate_limit("max_participants", max_participants),
        presence_ttl_s=validate_limit("presence_ttl_s", presence_ttl_s),
        cursor_tick_ms=validate_limit("cursor_tick_ms", cursor_tick_ms),
        created_by_id=created_by_id,
    )
    if password is not None:
        room.password_hash = await _hash(password)
    await _guard_room_limit(session, organization_id)
    await _guard_slug_free(session, organization_id, room.slug)
    session.add(room)
    await _flush(session)
    return room


async def update_room(session: AsyncSession, room: Room, changes: Mapping[str, Any]) -> list[str]:
    """Apply `changes` (keys of UPDATABLE; None clears description and password, resets features to
    the defaults and metadata to {}). Features merge over the room's current flags. Returns the
    names of the fields that changed (never their values: one of them may be a password)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    required = {"name", "slug", "type", "access"} | {attribute for attribute, *_ in LIMITS}
    for key in required & set(changes):
        if changes[key] is None:
            field = next((f for a, f, *_ in LIMITS if a == key), key)
            raise ValidationFailed(f"{field} cannot be null", field=field)
    new: dict[str, Any] = {}
    if "name" in changes:
        new["name"] = validate_name(changes["name"])
    if "slug" in changes:
        new["slug"] = validate_slug(changes["slug"])
        if new["slug"] != room.slug:
            await _guard_slug_free(session, room.organization_id, new["slug"], room.id)
    if "description" in changes:
        new["description"] = validate_description(changes["description"])
    for key in ("type", "access"):
        if key in changes:
            new[key] = changes[key]
    if "features" in changes:
        value = changes["features"]
        new["features"] = (
            default_room_features() if value is None else validate_features(value, room.features)
        )
    if "metadata" in changes:
        value = changes["metadata"]
        new["metadata_"] = {} if value is None else validate_metadata(value)
    for attribute, *_ in LIMITS:
        if attribute in changes:
            new[attribute] = validate_limit(attribute, changes[attribute])
    changed = [key.rstrip("_") for key, value in new.items() if getattr(room, key) != value]
    if "password" in changes:
        password = changes["password"]
        if password is None:
            if room.password_hash is not None:
                changed.append("password")
            new["password_hash"] = None
        else:
            new["password_hash"] = await _hash(password)
            changed.append("password")
    for key, value in new.items():
        setattr(room, key, value)
    if changed:
        await _flush(session)  # updated_at follows (onupdate)
    return changed


async def archive_room(session: AsyncSession, room: Room) -> bool:
    """Archive an active room; False when it already was archived."""
    if room.status == RoomStatus.DELETED:
        raise NotFound("room")
    if room.status == RoomStatus.ARCHIVED:
        return False
    room.status, room.archived_at = RoomStatus.ARCHIVED, utcnow()
    await session.flush()
    return True


async def unarchive_room(session: AsyncSession, room: Room) -> bool:
    """Make an archived room active again (counts against the plan's rooms); False when it was active."""
    if room.status == RoomStatus.DELETED:
        raise NotFound("room")
    if room.status == RoomStatus.ACTIVE:
        return False
    await _guard_room_limit(session, room.organization_id)
    room.status, room.archived_at = RoomStatus.ACTIVE, None
    await session.flush()
    return True


async def delete_room(session: AsyncSession, room: Room) -> None:
    """Hard delete: participants, documents, comments and voice sessions go with it (ON DELETE CASCADE).
    NOT_FOUND when a concurrent delete took it first (the row read earlier is gone)."""
    deleted = await session.execute(delete(Room).where(Room.id == room.id))
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("room")
    session.expunge(room)
