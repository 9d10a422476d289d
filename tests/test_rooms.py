"""Rooms (FR-3): create, read, list, update, archive, delete, plan limits, authorization, joining rules."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from app.accounts.models import Membership, MembershipRole, MembershipStatus, Organization
from app.audit.models import AuditLog
from app.auth.policy import Policy
from app.auth.principal import Developer, EndUserClient, RoomAccess, RoomGrant, SecretKeyClient
from app.db.types import utcnow
from app.documents.models import Document
from app.errors import Forbidden, NotFound
from app.rooms.access import authorize_join, room_is_full
from app.rooms.models import Participant, Room, RoomStatus
from app.security.passwords import hash_password
from tests import factories
from tests.gql import GQL, create_key, create_org, end_user_token, sign_up

FIELDS = """id organizationId name slug description type access hasPassword features metadata
  status archivedAt maxParticipants presenceTtlSeconds cursorTickMs lastActiveAt participantCount
  createdAt updatedAt"""
CREATE = f"""mutation($org: UUID!, $input: CreateRoomInput!) {{
  createRoom(organizationId: $org, input: $input) {{ {FIELDS} }} }}"""
UPDATE = f"""mutation($id: UUID!, $input: UpdateRoomInput!) {{
  updateRoom(id: $id, input: $input) {{ {FIELDS} }} }}"""
ARCHIVE = "mutation($id: UUID!) { archiveRoom(id: $id) { status archivedAt } }"
UNARCHIVE = "mutation($id: UUID!) { unarchiveRoom(id: $id) { status archivedAt } }"
DELETE = "mutation($id: UUID!) { deleteRoom(id: $id) }"
ROOM = "query($id: UUID) { room(id: $id) { id slug status participantCount } }"
ROOMS = """query($org: UUID!, $first: Int, $after: String, $status: RoomStatus, $type: RoomKind,
  $search: String) {
  rooms(organizationId: $org, first: $first, after: $after, status: $status, type: $type, search: $search) {
    edges { cursor node { slug } } pageInfo { hasNextPage endCursor } } }"""
DEFAULT_FEATURES = {
    "presence": True,
    "cursors": True,
    "comments": True,
    "voice": False,
    "screen_share": False,
}


async def _create(gql: GQL, org_id: str, **input: Any) -> dict[str, Any]:
    input = {"name": "Room", "slug": f"room-{uuid.uuid4().hex[:8]}", **input}
    return (await gql.data(CREATE, org=org_id, input=input))["createRoom"]  # type: ignore[no-any-return]


async def _set_max_rooms(session_factory, org_id: str, max_rooms: int) -> None:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        await session.execute(
            update(Organization).where(Organization.id == uuid.UUID(org_id)).values(max_rooms=max_rooms)
        )
        await session.commit()


async def _audit(session_factory, action: str) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        rows = await session.execute(select(AuditLog).where(AuditLog.action == action))
        return list(rows.scalars())


async def _slugs(gql: GQL, org_id: str, **filters: Any) -> list[str]:
    page = (await gql.data(ROOMS, org=org_id, first=100, **filters))["rooms"]
    return [edge["node"]["slug"] for edge in page["edges"]]


async def test_create_with_defaults_and_with_every_option(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)

    plain = await _create(dev.gql, org_id, name="  Plain  ", slug="plain")
    assert {k: v for k, v in plain.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "organizationId": org_id,
        "name": "Plain",
        "slug": "plain",
        "description": None,
        "type": "DOCUMENT",
        "access": "PRIVATE",
        "hasPassword": False,
        "features": DEFAULT_FEATURES,
        "metadata": {},
        "status": "ACTIVE",
        "archivedAt": None,
        "maxParticipants": 100,
        "presenceTtlSeconds": 30,
        "cursorTickMs": 50,
        "lastActiveAt": None,
        "participantCount": 0,
    }

    metadata = {"project": "apollo", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": True, "none": None}}
    body = await dev.gql.raw(
        CREATE,
        org=org_id,
        input={
            "name": "Design review",
            "slug": "Team-42:Design_v1.0",
            "description": "Weekly",
            "type": "WHITEBOARD",
            "access": "PUBLIC",
            "password": "s3cret-pass",
            "features": {"voice": True, "cursors": False},
            "metadata": metadata,
            "maxParticipants": 10_000,
            "presenceTtlSeconds": 5,
            "cursorTickMs": 16,
        },
    )
    assert "s3cret-pass" not in json.dumps(body)  # the password is never returned
    full = body["data"]["createRoom"]
    assert full["slug"] == "team-42:design_v1.0"  # slugs are lowercase, like organization slugs
    assert (full["type"], full["access"], full["hasPassword"]) == ("WHITEBOARD", "PUBLIC", True)
    assert full["features"] == {**DEFAULT_FEATURES, "voice": True, "cursors": False}
    assert full["metadata"] == metadata
    assert (full["maxParticipants"], full["presenceTtlSeconds"], full["cursorTickMs"]) == (10_000, 5, 16)

    by_slug = await dev.gql.data(
        """query($o: UUID, $s: String) {
          room(organizationId: $o, slug: $s) { id description organization { id } } }""",
        o=org_id,
        s="TEAM-42:design_v1.0",
    )
    assert by_slug["room"] == {"id": full["id"], "description": "Weekly", "organization": {"id": org_id}}
    async with session_factory() as session:
        stored = await session.get(Room, uuid.UUID(full["id"]))
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$") and "s3cret-pass" not in stored.password_hash
    assert stored.created_by_id == uuid.UUID(dev.user_id)

    created = await _audit(session_factory, "room.created")
    assert sorted(row.entity_id for row in created) == sorted([plain["id"], full["id"]])
    assert all(row.actor_user_id == uuid.UUID(dev.user_id) for row in created)
    assert "s3cret" not in json.dumps([row.changes for row in created])


async def test_slugs_are_unique_per_organization(anon: GQL) -> None:
    dev = await sign_up(anon)
    org_a, org_b = await create_org(dev), await create_org(dev)
    first = await _create(dev.gql, org_a, slug="team-1:board")
    taken = await dev.gql.error(CREATE, org=org_a, input={"name": "X", "slug": "TEAM-1:board"})
    assert taken["extensions"] == {"code": "CONFLICT", "field": "slug"} | {
        k: v for k, v in taken["extensions"].items() if k not in ("code", "field")
    }
    assert (await _create(dev.gql, org_b, slug="team-1:board"))["slug"] == "team-1:board"  # another org: fine

    second = await _create(dev.gql, org_a, slug="team-1:notes")
    moved = await dev.gql.error(UPDATE, id=second["id"], input={"slug": "team-1:board"})
    assert (moved["extensions"]["code"], moved["extensions"]["field"]) == ("CONFLICT", "slug")
    same = await dev.gql.data(UPDATE, id=first["id"], input={"slug": "team-1:board"})  # its own slug: fine
    assert same["updateRoom"]["slug"] == "team-1:board"


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"slug": "has space"}, "slug"),
    ({"slug": "-leading"}, "slug"),
    ({"slug": "trailing:"}, "slug"),
    ({"slug": "a/b"}, "slug"),
    ({"slug": "x" * 129}, "slug"),
    ({"slug": ""}, "slug"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"description": "d" * 2001}, "description"),
    ({"features": {"teleport": True}}, "features"),
    ({"features": {"voice": "yes"}}, "features"),
    ({"features": [True]}, "features"),
    ({"metadata": [1, 2]}, "metadata"),
    ({"metadata": "text"}, "metadata"),
    ({"metadata": {"blob": "x" * 16_400}}, "metadata"),
    ({"maxParticipants": 0}, "maxParticipants"),
    ({"maxParticipants": 10_001}, "maxParticipants"),
    ({"presenceTtlSeconds": 4}, "presenceTtlSeconds"),
    ({"presenceTtlSeconds": 3601}, "presenceTtlSeconds"),
    ({"cursorTickMs": 15}, "cursorTickMs"),
    ({"cursorTickMs": 1001}, "cursorTickMs"),
    ({"password": "abc"}, "password"),
]


async def test_invalid_input_names_the_field(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    for overrides, field in INVALID:
        error = await dev.gql.error(CREATE, org=org_id, input={"name": "R", "slug": "ok", **overrides})
        assert error["extensions"]["code"] == "VALIDATION_ERROR", (overrides, error)
        assert error["extensions"]["field"] == field, (overrides, error)
    longest = await _create(dev.gql, org_id, slug="a" + "-:_." * 31 + "bcd", metadata={"blob": "x" * 16_000})
    assert len(longest["slug"]) == 128
    # The same rules apply to updates, and required fields cannot be set to null.
    for overrides, field in [
        *INVALID,
        ({"name": None}, "name"),
        ({"maxParticipants": None}, "maxParticipants"),
    ]:
        if overrides.get("slug") == "":
            continue
        error = await dev.gql.error(UPDATE, id=longest["id"], input=overrides)
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION_ERROR", field)
    async with session_factory() as session:
        assert len(list((await session.execute(select(Room.id))).scalars())) == 1  # nothing else was written


async def test_list_with_pagination_filters_and_search(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id, other_org = await create_org(dev), await create_org(dev)
    await _set_max_rooms(session_factory, org_id, 20)
    specs = [
        ("Design Review", "weekly", "DOCUMENT"),
        ("Roadmap", "team-42:design", "CANVAS"),
        ("Standup", "standup", "WHITEBOARD"),
        ("100% done", "percent", "CANVAS"),
        ("snake_case", "under", "CUSTOM"),
        ("Ünïcode Café", "cafe", "DOCUMENT"),
    ]
    ids = {}
    for name, slug, kind in specs:
        ids[slug] = (await _create(dev.gql, org_id, name=name, slug=slug, type=kind))["id"]
    await _create(dev.gql, other_org, name="Design elsewhere", slug="design")
    await dev.gql.data(ARCHIVE, id=ids["standup"])

    seen, after = [], None
    while True:
        page = (await dev.gql.data(ROOMS, org=org_id, first=4, after=after))["rooms"]
        seen += [edge["node"]["slug"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [slug for _, slug, _ in specs]  # oldest first, every room once, none of the other org

    assert await _slugs(dev.gql, org_id, status="ARCHIVED") == ["standup"]
    assert "standup" not in await _slugs(dev.gql, org_id, status="ACTIVE")
    assert await _slugs(dev.gql, org_id, type="CANVAS") == ["team-42:design", "percent"]
    assert await _slugs(dev.gql, org_id, type="CANVAS", status="ARCHIVED") == []
    assert await _slugs(dev.gql, org_id, search="DESIGN") == ["weekly", "team-42:design"]  # name or slug
    assert await _slugs(dev.gql, org_id, search="design", type="DOCUMENT") == ["weekly"]
    assert await _slugs(dev.gql, org_id, search="  42:DES ") == ["team-42:design"]
    assert await _slugs(dev.gql, org_id, search="%") == ["percent"]  # LIKE wildcards are literal
    assert await _slugs(dev.gql, org_id, search="_") == ["under"]
    assert await _slugs(dev.gql, org_id, search="café") == ["cafe"]
    assert await _slugs(dev.gql, org_id, search="nothing-like-it") == []
    assert len(await _slugs(dev.gql, org_id, search="")) == len(specs)
    too_long = await dev.gql.error(ROOMS, org=org_id, search="x" * 101)
    assert too_long["extensions"]["field"] == "search"
    bad_cursor = await dev.gql.error(ROOMS, org=org_id, after="not-a-cursor")
    assert bad_cursor["extensions"]["field"] == "after"


async def test_update_changes_only_the_fields_given(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    room = await _create(
        dev.gql,
        org_id,
        name="Old",
        slug="old",
        description="desc",
        features={"voice": True},
        metadata={"a": 1},
    )

    unchanged = (await dev.gql.data(UPDATE, id=room["id"], input={}))["updateRoom"]
    assert unchanged == room
    assert await _audit(session_factory, "room.updated") == []  # nothing changed, nothing audited

    body = await dev.gql.raw(
        UPDATE,
        id=room["id"],
        input={
            "name": "New",
            "slug": "Team:New",
            "type": "CANVAS",
            "access": "ORGANIZATION",
            "password": "open sesame",
            "features": {"cursors": False},
            "metadata": {"b": 2},
            "maxParticipants": 3,
            "presenceTtlSeconds": 60,
            "cursorTickMs": 100,
        },
    )
    assert "open sesame" not in json.dumps(body)
    updated = body["data"]["updateRoom"]
    assert updated["name"] == "New" and updated["slug"] == "team:new" and updated["description"] == "desc"
    assert (updated["type"], updated["access"], updated["hasPassword"]) == ("CANVAS", "ORGANIZATION", True)
    assert updated["features"] == {**DEFAULT_FEATURES, "voice": True, "cursors": False}  # merged over current
    assert updated["metadata"] == {"b": 2}  # replaced
    assert (updated["maxParticipants"], updated["presenceTtlSeconds"], updated["cursorTickMs"]) == (
        3,
        60,
        100,
    )
    assert updated["updatedAt"] >= room["updatedAt"]

    cleared = (
        await dev.gql.data(
            UPDATE,
            id=room["id"],
            input={"password": None, "description": None, "features": None, "metadata": None},
        )
    )["updateRoom"]
    assert cleared["hasPassword"] is False and cleared["description"] is None
    assert cleared["features"] == DEFAULT_FEATURES and cleared["metadata"] == {}
    async with session_factory() as session:
        stored = await session.get(Room, uuid.UUID(room["id"]))
    assert stored is not None and stored.password_hash is None

    audited = await _audit(session_factory, "room.updated")
    assert len(audited) == 2
    fields = sorted(sorted(row.changes["fields"]) for row in audited)
    assert ["description", "features", "metadata", "password"] in fields
    assert "open sesame" not in json.dumps([row.changes for row in audited])


async def test_archive_unarchive_and_delete(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    room = await _create(dev.gql, org_id, slug="lifecycle")

    archived = (await dev.gql.data(ARCHIVE, id=room["id"]))["archiveRoom"]
    assert archived["status"] == "ARCHIVED" and archived["archivedAt"] is not None
    again = (await dev.gql.data(ARCHIVE, id=room["id"]))["archiveRoom"]
    assert again == archived  # idempotent
    restored = (await dev.gql.data(UNARCHIVE, id=room["id"]))["unarchiveRoom"]
    assert restored == {"status": "ACTIVE", "archivedAt": None}
    assert len(await _audit(session_factory, "room.archived")) == 1
    assert len(await _audit(session_factory, "room.unarchived")) == 1

    # Deleting removes what belongs to the room.
    room_id = uuid.UUID(room["id"])
    participant = Participant(room_id=room_id, connection_id="c1", connected_at=utcnow())
    document = Document(room_id=room_id, name="Notes")
    await factories.add(session_factory, participant, document)
    assert (await dev.gql.data(DELETE, id=room["id"]))["deleteRoom"] is True
    gone = await dev.gql.error(ROOM, id=room["id"])
    assert gone["extensions"]["code"] == "NOT_FOUND"
    async with session_factory() as session:
        assert await session.get(Participant, participant.id) is None
        assert await session.get(Document, document.id) is None
    assert [row.entity_id for row in await _audit(session_factory, "room.deleted")] == [room["id"]]
    for document_ in (DELETE, ARCHIVE, UNARCHIVE):
        missing = await dev.gql.error(document_, id=room["id"])
        assert missing["extensions"]["code"] == "NOT_FOUND"
    missing = await dev.gql.error(UPDATE, id=str(uuid.uuid4()), input={"name": "x"})
    assert missing["extensions"]["code"] == "NOT_FOUND"


async def test_active_rooms_are_limited_by_the_plan(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    await _set_max_rooms(session_factory, org_id, 2)
    one, two = await _create(dev.gql, org_id), await _create(dev.gql, org_id)
    over = await dev.gql.error(CREATE, org=org_id, input={"name": "Three", "slug": "three"})
    assert over["extensions"]["code"] == "PLAN_LIMIT_EXCEEDED"
    assert (over["extensions"]["limit"], over["extensions"]["current"]) == (2, 2)

    await dev.gql.data(ARCHIVE, id=one["id"])  # archived rooms do not count
    three = await _create(dev.gql, org_id, slug="three")
    refused = await dev.gql.error(UNARCHIVE, id=one["id"])  # ...until they come back
    assert refused["extensions"]["code"] == "PLAN_LIMIT_EXCEEDED"
    await dev.gql.data(DELETE, id=two["id"])
    assert (await dev.gql.data(UNARCHIVE, id=one["id"]))["unarchiveRoom"]["status"] == "ACTIVE"
    assert sorted(await _slugs(dev.gql, org_id)) == sorted([one["slug"], three["slug"]])


async def test_who_may_manage_rooms(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    owner = await sign_up(anon)
    org_id = await create_org(owner)
    room = await _create(owner.gql, org_id, slug="team:room")

    def refused(body: dict[str, Any]) -> str:
        assert body.get("errors") and not any((body.get("data") or {}).values()), body
        return body["errors"][0]["extensions"]["code"]  # type: ignore[no-any-return]

    async def attempts(gql: GQL) -> list[str]:
        return [
            refused(await gql.raw(CREATE, org=org_id, input={"name": "X", "slug": "x"})),
            refused(await gql.raw(UPDATE, id=room["id"], input={"name": "pwned"})),
            refused(await gql.raw(ARCHIVE, id=room["id"])),
            refused(await gql.raw(UNARCHIVE, id=room["id"])),
            refused(await gql.raw(DELETE, id=room["id"])),
        ]

    # A viewer reads rooms but cannot change them; a stranger does not even see them.
    viewer, stranger = await sign_up(anon), await sign_up(anon)
    await factories.add(
        session_factory,
        Membership(
            organization_id=uuid.UUID(org_id),
            user_id=uuid.UUID(viewer.user_id),
            role=MembershipRole.VIEWER,
            status=MembershipStatus.ACTIVE,
        ),
    )
    assert (await viewer.gql.data(ROOM, id=room["id"]))["room"]["slug"] == "team:room"
    assert await attempts(viewer.gql) == ["FORBIDDEN"] * 5
    assert await attempts(stranger.gql) == ["NOT_FOUND"] * 5

    # Secret keys need the rooms:write scope.
    read_only, _ = await create_key(owner, org_id, "SECRET", scopes=["rooms:read"])
    assert await attempts(anon.bearer(read_only)) == ["FORBIDDEN"] * 5
    writer, writer_id = await create_key(owner, org_id, "SECRET", scopes=["rooms:read", "rooms:write"])
    by_key = await _create(anon.bearer(writer), org_id, slug="by-key")
    renamed = await anon.bearer(writer).data(UPDATE, id=by_key["id"], input={"name": "Renamed"})
    assert renamed["updateRoom"]["name"] == "Renamed"
    assert (await anon.bearer(writer).data(DELETE, id=by_key["id"]))["deleteRoom"] is True
    key_rows = [row for row in await _audit(session_factory, "room.created") if row.entity_id == by_key["id"]]
    assert [(row.actor_type, str(row.actor_api_key_id)) for row in key_rows] == [("api_key", writer_id)]

    # End-users never manage rooms, whatever their token grants; rooms it does not name do not exist.
    full_access, _ = await create_key(owner, org_id, "SECRET")
    publishable, _ = await create_key(owner, org_id, "PUBLISHABLE", scopes=["rooms:read", "rooms:write"])
    every_right = ["read", "write", "presence", "comment"]
    token = await end_user_token(anon.bearer(full_access), "eve", [{"room": "team:*", "access": every_right}])
    end_user = anon.bearer(token, **{"x-api-key": publishable})
    assert (await end_user.data(ROOM, id=room["id"]))["room"]["slug"] == "team:room"
    assert await attempts(end_user) == ["FORBIDDEN"] * 5
    other = await _create(owner.gql, org_id, slug="elsewhere")
    hidden = await end_user.error(UPDATE, id=other["id"], input={"name": "pwned"})
    assert hidden["extensions"]["code"] == "NOT_FOUND"

    after = (await owner.gql.data(ROOM, id=room["id"]))["room"]
    assert after["status"] == "ACTIVE"
    assert await _slugs(owner.gql, org_id) == ["team:room", "elsewhere"]


class FakePresence:
    def __init__(self, counts: dict[uuid.UUID, int]) -> None:
        self.counts = counts

    async def count(self, room_id: uuid.UUID) -> int:
        return self.counts.get(room_id, 0)


async def test_participant_count_is_read_from_the_presence_registry(  # type: ignore[no-untyped-def]
    anon: GQL, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    busy, quiet = await _create(dev.gql, org_id), await _create(dev.gql, org_id)
    monkeypatch.setattr(
        app.state.syncforge, "presence", FakePresence({uuid.UUID(busy["id"]): 7}), raising=False
    )
    assert (await dev.gql.data(ROOM, id=busy["id"]))["room"]["participantCount"] == 7
    listed = await dev.gql.data(
        "query($org: UUID!) { rooms(organizationId: $org) { edges { node { id participantCount } } } }",
        org=org_id,
    )
    counts = {edge["node"]["id"]: edge["node"]["participantCount"] for edge in listed["rooms"]["edges"]}
    assert counts == {busy["id"]: 7, quiet["id"]: 0}
    monkeypatch.setattr(app.state.syncforge, "presence", None, raising=False)  # a process without presence
    assert (await dev.gql.data(ROOM, id=busy["id"]))["room"]["participantCount"] == 0


async def _join_code(policy: Policy, room: Room, password: str | None = None) -> str | None:
    try:
        await authorize_join(policy, room, password)
    except (NotFound, Forbidden) as exc:
        return f"{exc.code.value}:{exc.extensions.get('reason', '')}"
    return None


async def test_joining_rules(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    member, stranger = await sign_up(anon), await sign_up(anon)
    org_id = uuid.UUID(await create_org(member))
    other_org = uuid.UUID(await create_org(stranger))
    locked = factories.room_in(org_id, slug="team:locked", password_hash=await hash_password("letmein"))
    open_room = factories.room_in(org_id, slug="team:open")
    archived = factories.room_in(org_id, slug="team:old", status=RoomStatus.ARCHIVED)
    await factories.add(session_factory, locked, open_room, archived)

    def end_user(
        org: uuid.UUID, *access: RoomAccess, scopes: tuple[str, ...] = ("presence:write",)
    ) -> Policy:
        principal = EndUserClient(
            organization_id=org,
            api_key_id=uuid.uuid4(),
            scopes=frozenset(scopes),
            end_user_id=uuid.uuid4(),
            external_id="u1",
            grants=(RoomGrant("team:*", frozenset(access)),),
        )
        return Policy(principal, session_factory)

    def secret_key(org: uuid.UUID, *scopes: str) -> Policy:
        return Policy(SecretKeyClient(org, uuid.uuid4(), frozenset(scopes)), session_factory)

    present = end_user(org_id, RoomAccess.PRESENCE)
    assert await _join_code(present, open_room) is None
    assert await _join_code(present, locked) == "FORBIDDEN:PASSWORD_REQUIRED"
    assert await _join_code(present, locked, "") == "FORBIDDEN:PASSWORD_REQUIRED"
    assert await _join_code(present, locked, "wrong") == "FORBIDDEN:WRONG_PASSWORD"
    assert await _join_code(present, locked, "letmein") is None
    assert await _join_code(present, archived) == "FORBIDDEN:ARCHIVED"
    assert await _join_code(end_user(org_id, RoomAccess.READ), open_room) == "FORBIDDEN:"  # no presence grant
    assert await _join_code(end_user(org_id, RoomAccess.PRESENCE, scopes=()), open_room) == "FORBIDDEN:"
    assert await _join_code(end_user(other_org, RoomAccess.PRESENCE), open_room) == "NOT_FOUND:"
    elsewhere = factories.room_in(org_id, slug="lobby")  # not named by the token's grants
    assert await _join_code(present, elsewhere) == "NOT_FOUND:"

    # Members of the organization and its secret keys skip the password; others do not see the room.
    assert await _join_code(Policy(Developer(uuid.UUID(member.user_id)), session_factory), locked) is None
    assert (
        await _join_code(Policy(Developer(uuid.UUID(stranger.user_id)), session_factory), locked)
        == "NOT_FOUND:"
    )
    assert await _join_code(Policy(Developer(uuid.UUID(member.user_id)), session_factory), archived) == (
        "FORBIDDEN:ARCHIVED"
    )
    assert await _join_code(secret_key(org_id, "presence:write"), locked) is None
    assert await _join_code(secret_key(org_id, "rooms:read"), locked) == "FORBIDDEN:"
    assert await _join_code(secret_key(other_org, "presence:write"), locked) == "NOT_FOUND:"

    room = Room(organization_id=org_id, name="R", slug="r", max_participants=2)
    assert [room_is_full(n, room) for n in (0, 1, 2, 3)] == [False, False, True, True]
    assert room_is_full(99, Room(organization_id=org_id, name="D", slug="d")) is False  # default 100
    assert room_is_full(100, Room(organization_id=org_id, name="D", slug="d")) is True


async def test_concurrent_creations_never_exceed_the_plan(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    await _set_max_rooms(session_factory, org_id, 3)
    bodies = await asyncio.gather(
        *(dev.gql.raw(CREATE, org=org_id, input={"name": f"R{i}", "slug": f"r-{i}"}) for i in range(10))
    )
    codes = sorted(body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors"))
    assert codes == ["PLAN_LIMIT_EXCEEDED"] * 7
    assert len(await _slugs(dev.gql, org_id)) == 3

    await _set_max_rooms(session_factory, org_id, 100)
    same_slug = await asyncio.gather(
        *(dev.gql.raw(CREATE, org=org_id, input={"name": "Twin", "slug": "twin"}) for _ in range(6))
    )
    codes = sorted(body["errors"][0]["extensions"]["code"] for body in same_slug if body.get("errors"))
    assert codes == ["CONFLICT"] * 5
