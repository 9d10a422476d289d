"""The demo's data, made on first start and checked on every start: an organization, one room,
one shared text document in it and the publishable key the demo page connects with.

Idempotent, and safe when several processes start at once: the organization's unique slug
decides which start creates it (a loser's CONFLICT rolls its transaction back and it tries again,
finding the winner's rows), and every later step runs with the organization's row locked, so
concurrent starts check and add the room, the document and the key one at a time.

The organization has no members, on purpose: no developer account exists that could log in to it
(or have its password reset), so nobody can create secret keys, rooms or webhooks there. What its
visitors may do is only what /demo/token grants: rooms `demo:*`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import ApiKey, ApiKeyStatus, ApiKeyType, Organization
from app.auth.policy import DEFAULT_KEY_SCOPES
from app.db import UnitOfWork
from app.db.types import utcnow
from app.db.unique import flush_unique
from app.demo import derived_keys
from app.documents import service as documents
from app.documents.models import Document, DocumentType
from app.errors import Conflict, NotFound
from app.rooms import service as rooms
from app.rooms.models import Room, RoomAccess, RoomStatus, RoomType
from app.security.keys import Keys

log = logging.getLogger("syncforge.demo")

ORGANIZATION_SLUG = "syncforge-demo"
ORGANIZATION_NAME = "SyncForge demo"
ROOM_SLUG = "demo:lobby"
ROOM_NAME = "Demo lobby"
# What visitors' tokens grant (visitor_tokens.py): every room whose slug starts with "demo:".
ROOM_PATTERN = "demo:*"
DOCUMENT_SLUG = "shared-text"
DOCUMENT_NAME = "Shared text"
KEY_PURPOSE = "demo-page"
KEY_NAME = "demo page"
# Per minute. Every visitor shares this one key, so its own limit would let a few visitors spend
# it for all: it is set high, and the per-address limits (SYNCFORGE_IP_RATE_LIMIT, and
# SYNCFORGE_DEMO_TOKEN_RATE_LIMIT for tokens) are what bounds each visitor.
KEY_RATE_LIMIT = 100_000
# A concurrent start can win the organization's slug once; the next attempt finds its rows.
SEED_ATTEMPTS = 3


@dataclass(frozen=True)
class DemoSeed:
    organization_id: uuid.UUID
    room_id: uuid.UUID
    document_id: uuid.UUID
    api_key_id: uuid.UUID
    # The publishable key's text (served to every visitor, but still kept out of reprs and logs).
    public_api_key: str = field(repr=False)


async def seed(session_factory: async_sessionmaker[AsyncSession], keys: Keys) -> DemoSeed:
    """Make (or find, and mend) the demo's rows; commits."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            async with UnitOfWork(session_factory) as uow:
                return await _seed(uow.session, keys)
        except Conflict:
            if attempt == SEED_ATTEMPTS:
                raise
            log.debug("demo: a concurrent start seeded first (attempt %d); reading its rows", attempt)
    raise AssertionError("unreachable")


async def _seed(session: AsyncSession, keys: Keys) -> DemoSeed:
    organization = await _organization(session)
    room = await _room(session, organization.id)
    document = await _document(session, room.id)
    key, public_api_key = await derived_keys.ensure(
        session,
        keys,
        purpose=KEY_PURPOSE,
        organization_id=organization.id,
        key_type=ApiKeyType.PUBLISHABLE,
        name=KEY_NAME,
        # The collaboration scopes (none administrative); rooms are narrowed by the tokens' grants.
        scopes=list(DEFAULT_KEY_SCOPES),
        rate_limit=KEY_RATE_LIMIT,
    )
    if key.rate_limit != KEY_RATE_LIMIT:  # a key seeded by an earlier version
        key.rate_limit = KEY_RATE_LIMIT
    await _revoke_other_demo_keys(session, organization.id, keep=key.id)
    return DemoSeed(organization.id, room.id, document.id, key.id, public_api_key)


async def _organization(session: AsyncSession) -> Organization:
    """The demo organization, its row locked for the rest of the transaction."""
    found = (
        await session.execute(select(Organization).where(Organization.slug == ORGANIZATION_SLUG))
    ).scalar_one_or_none()
    if found is None:
        found = Organization(name=ORGANIZATION_NAME, slug=ORGANIZATION_SLUG)
        session.add(found)
        # Another process may have inserted it since our SELECT: CONFLICT, and seed() tries again.
        await flush_unique(session, "the demo organization was created concurrently")
        return found  # our uncommitted insert holds the lock already
    # Locked, the checks below see the rows of any start that got here first.
    await derived_keys.lock_organization(session, found.id)
    return found


async def _room(session: AsyncSession, organization_id: uuid.UUID) -> Room:
    try:
        room = await rooms.get_room_by_slug(session, organization_id, ROOM_SLUG)
    except NotFound:
        return await rooms.create_room(
            session,
            organization_id,
            name=ROOM_NAME,
            slug=ROOM_SLUG,
            description="The live demo's room: every visitor of /demo joins it.",
            type=RoomType.DOCUMENT,
            # Private: only the tokens' `demo:*` grants open it (read, write, presence, comment);
            # a publishable key alone, without a token, sees nothing.
            access=RoomAccess.PRIVATE,
            features={"presence": True, "cursors": True, "comments": True},
        )
    await reopen(session, room)
    return room


async def reopen(session: AsyncSession, room: Room) -> bool:
    """Make the demo room active again if the idle-room job archived it (nobody visited for
    SYNCFORGE_ROOM_IDLE_ARCHIVE_DAYS): the demo must keep working. True when it was reopened."""
    if room.status == RoomStatus.ACTIVE:
        return False
    if room.status == RoomStatus.ARCHIVED:
        return await rooms.unarchive_room(session, room)
    room.status, room.archived_at = RoomStatus.ACTIVE, None
    await session.flush()
    return True


async def _document(session: AsyncSession, room_id: uuid.UUID) -> Document:
    query = select(Document).where(Document.room_id == room_id, Document.slug == DOCUMENT_SLUG)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        return await documents.create_document(
            session,
            room_id,
            name=DOCUMENT_NAME,
            slug=DOCUMENT_SLUG,
            type=DocumentType.TEXT,
            metadata={},
            created_by_id=None,
        )
    if documents.restore_document(found):  # it was in the trash
        await session.flush()
    return found


async def _revoke_other_demo_keys(
    session: AsyncSession, organization_id: uuid.UUID, *, keep: uuid.UUID
) -> None:
    """Keys of an earlier deployment secret (the embedded default's syncforge.secret was replaced):
    they were shown to every visitor, so they stop working rather than linger unknown."""
    stale = await session.execute(
        select(ApiKey).where(
            ApiKey.organization_id == organization_id,
            ApiKey.name == KEY_NAME,
            ApiKey.status == ApiKeyStatus.ACTIVE,
            ApiKey.id != keep,
        )
    )
    for key in stale.scalars():
        key.status, key.revoked_at = ApiKeyStatus.REVOKED, utcnow()
    await session.flush()
