"""The data model behaves the same on SQLite and PostgreSQL: defaults, identities, cascades, time zones."""

from __future__ import annotations

from datetime import UTC, date

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.accounts.models import Membership, MembershipRole, Organization, User
from app.comments.models import Comment, Reaction
from app.documents.models import Document, DocumentUpdate
from app.rooms.models import Participant, Room
from tests import factories


async def test_defaults_and_timezone_aware_timestamps(session_factory) -> None:  # type: ignore[no-untyped-def]
    org = factories.organization()
    await factories.add(session_factory, org, factories.room(org))
    async with session_factory() as session:
        room = (await session.execute(select(Room))).scalar_one()
    assert room.features == {
        "presence": True,
        "cursors": True,
        "comments": True,
        "voice": False,
        "screen_share": False,
    }
    assert room.metadata_ == {} and room.type.value == "document" and room.access.value == "private"
    assert room.inserted_at.tzinfo is not None and room.inserted_at.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize(
    "identity", ["organization slug", "room slug per org", "membership", "reaction", "update seq"]
)
async def test_unique_identities_are_enforced(session_factory, identity: str) -> None:  # type: ignore[no-untyped-def]
    org = factories.organization()
    user = User(email="u@example.com")
    room = factories.room(org)
    document = Document(room_id=room.id, name="doc", slug="doc")
    comment = Comment(room_id=room.id, user_id=user.id, body="hi")
    await factories.add(session_factory, org, user)
    await factories.add(session_factory, room)
    await factories.add(session_factory, document, comment)
    first, duplicate = {
        "organization slug": (None, Organization(name="x", slug=org.slug)),
        "room slug per org": (None, Room(organization_id=org.id, name="x", slug=room.slug)),
        "membership": (
            Membership(organization_id=org.id, user_id=user.id),
            Membership(organization_id=org.id, user_id=user.id, role=MembershipRole.ADMIN),
        ),
        "reaction": (
            Reaction(comment_id=comment.id, user_id=user.id, emoji="👍"),
            Reaction(comment_id=comment.id, user_id=user.id, emoji="👍"),
        ),
        "update seq": (
            DocumentUpdate(document_id=document.id, seq=1, update=b"\x00"),
            DocumentUpdate(document_id=document.id, seq=1, update=b"\x01"),
        ),
    }[identity]
    if first is not None:
        await factories.add(session_factory, first)
    with pytest.raises(IntegrityError):
        await factories.add(session_factory, duplicate)
    # The same slug in another organization is fine.
    if identity == "room slug per org":
        other = factories.organization()
        await factories.add(session_factory, other)
        await factories.add(session_factory, Room(organization_id=other.id, name="x", slug=room.slug))


async def test_deleting_an_organization_cascades_and_optional_links_are_nulled(
    session_factory,
) -> None:  # type: ignore[no-untyped-def]
    org = factories.organization()
    author = User(email="author@example.com")
    room = factories.room(org, created_by_id=author.id)
    await factories.add(session_factory, org, author)
    await factories.add(session_factory, room)
    await factories.add(
        session_factory,
        Participant(room_id=room.id, user_id=author.id, connection_id="c1", connected_at=room.inserted_at),
        Document(room_id=room.id, name="d", slug="d", yjs_state=b"\x00\x00"),
    )
    async with session_factory() as session:
        loaded = (await session.execute(select(Room).options(selectinload(Room.documents)))).scalar_one()
        assert [d.yjs_state for d in loaded.documents] == [b"\x00\x00"]
        await session.delete(await session.get(User, author.id))
        await session.commit()
        assert (await session.execute(select(Room.created_by_id))).scalar_one() is None
        # A participant outlives its user account (history), unlinked.
        assert (await session.execute(select(Participant.user_id))).scalar_one() is None
        await session.delete(await session.get(Organization, org.id))
        await session.commit()
        for model in (Room, Document, Participant):
            assert (await session.execute(select(model))).first() is None


async def test_enum_values_are_checked_by_the_database(session_factory) -> None:  # type: ignore[no-untyped-def]
    org = factories.organization()
    await factories.add(session_factory, org)
    await factories.add(session_factory, factories.room(org))
    async with session_factory() as session:
        # Bypass the ORM's own enum check: the CHECK constraint must still refuse the value.
        with pytest.raises(IntegrityError):
            await session.execute(text("UPDATE rooms SET type = 'spaceship'"))


async def test_dates_round_trip(session_factory) -> None:  # type: ignore[no-untyped-def]
    from app.analytics.models import RoomAnalytics

    org = factories.organization()
    room = factories.room(org)
    await factories.add(session_factory, org)
    await factories.add(session_factory, room)
    await factories.add(session_factory, RoomAnalytics(room_id=room.id, date=date(2026, 11, 22)))
    async with session_factory() as session:
        row = (await session.execute(select(RoomAnalytics))).scalar_one()
    assert row.date == date(2026, 11, 22) and row.total_connections == 0
