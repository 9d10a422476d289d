"""Concurrent writes of one unique value: one wins, the others get CONFLICT naming the field (never
INTERNAL_ERROR), whether the service's own check or the database's constraint catches them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Organization
from app.db import UnitOfWork
from app.documents.models import Document
from app.errors import Conflict, ErrorCode
from app.rooms.models import Room
from tests import factories
from tests.gql import CREATE_ORG, GQL, create_org, sign_up

RACERS = 10
CREATE_ROOM = """mutation($org: UUID!, $input: CreateRoomInput!) {
  createRoom(organizationId: $org, input: $input) { id } }"""
CREATE_DOCUMENT = """mutation($room: UUID!, $slug: String!) {
  createDocument(roomId: $room, input: {name: "Doc", slug: $slug}) { id } }"""


@pytest.fixture
def flushes_meet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`flushes_meet(Model, n)`: the first flush of a new `Model` in each of `n` sessions waits until
    all `n` have come that far, so every check made before it (a SELECT of the slug) has passed
    for all of them before any of them writes: the race happens every time, on both backends."""
    original = AsyncSession.flush

    def arm(model: type, n: int) -> None:
        arrived: set[int] = set()
        everyone = asyncio.Event()

        async def flush(self: AsyncSession, *args: Any, **kwargs: Any) -> None:
            if id(self) not in arrived and any(isinstance(row, model) for row in self.new):
                arrived.add(id(self))
                if len(arrived) == n:
                    everyone.set()
                await everyone.wait()
            await original(self, *args, **kwargs)

        monkeypatch.setattr(AsyncSession, "flush", flush)

    yield arm


def _outcomes(bodies: list[dict[str, Any]]) -> tuple[int, list[tuple[str, str | None]]]:
    won = sum(1 for body in bodies if not body.get("errors"))
    lost = [
        (body["errors"][0]["extensions"]["code"], body["errors"][0]["extensions"].get("field"))
        for body in bodies
        if body.get("errors")
    ]
    return won, lost


async def test_concurrent_organizations_with_one_slug(anon: GQL, flushes_meet: Any) -> None:
    dev = await sign_up(anon)
    flushes_meet(Organization, RACERS)
    bodies = await asyncio.gather(
        *(dev.gql.raw(CREATE_ORG, input={"name": "Acme", "slug": "acme"}) for _ in range(RACERS))
    )
    won, lost = _outcomes(bodies)
    assert won == 1, bodies
    assert lost == [("CONFLICT", "slug")] * (RACERS - 1), bodies


async def test_concurrent_rooms_with_one_slug(anon: GQL) -> None:
    # Creations in one organization take its lock (room limits): the service's check sees the winner.
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    bodies = await asyncio.gather(
        *(
            dev.gql.raw(CREATE_ROOM, org=org_id, input={"name": "Room", "slug": "lobby"})
            for _ in range(RACERS)
        )
    )
    won, lost = _outcomes(bodies)
    assert won == 1, bodies
    assert lost == [("CONFLICT", "slug")] * (RACERS - 1), bodies


async def test_concurrent_documents_with_one_slug(anon: GQL, flushes_meet: Any) -> None:
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    room = (await dev.gql.data(CREATE_ROOM, org=org_id, input={"name": "Room", "slug": "lobby"}))[
        "createRoom"
    ]
    flushes_meet(Document, RACERS)
    bodies = await asyncio.gather(
        *(dev.gql.raw(CREATE_DOCUMENT, room=room["id"], slug="spec") for _ in range(RACERS))
    )
    won, lost = _outcomes(bodies)
    assert won == 1, bodies
    assert lost == [("CONFLICT", "slug")] * (RACERS - 1), bodies


def _duplicate(name: str, org: Organization, room: Room) -> Any:
    return {
        "organization slug": lambda: Organization(name="Other", slug=org.slug),
        "room slug": lambda: Room(organization_id=org.id, name="Other", slug=room.slug),
        "document slug": lambda: Document(room_id=room.id, name="Other", slug="spec"),
    }[name]()


@pytest.mark.parametrize("when", ["flush", "commit"])
@pytest.mark.parametrize("name", ["organization slug", "room slug", "document slug"])
async def test_the_unit_of_work_turns_a_unique_violation_into_a_conflict(  # type: ignore[no-untyped-def]
    session_factory, name: str, when: str
) -> None:
    org = factories.organization()
    room = factories.room(org)
    await factories.add(session_factory, org)
    await factories.add(session_factory, room, Document(room_id=room.id, name="d", slug="spec"))
    committed: list[str] = []
    with pytest.raises(Conflict) as raised:
        async with UnitOfWork(session_factory) as uow:
            uow.on_commit(lambda: committed.append("callback"))
            uow.session.add(_duplicate(name, org, room))
            if when == "flush":
                await uow.session.flush()
    assert raised.value.code == ErrorCode.CONFLICT and raised.value.extensions == {"field": "slug"}
    assert isinstance(raised.value.__cause__, IntegrityError)
    assert committed == []


async def test_other_integrity_errors_are_not_conflicts(session_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError):
        async with UnitOfWork(session_factory) as uow:
            uow.session.add(Room(organization_id=uuid.uuid4(), name="Orphan", slug="orphan"))
