"""Runs tests/cross_tenant.py's matrix for every kind of foreign credential, over HTTP and WS."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.accounts.models import ApiKey, ApiKeyStatus, Invitation
from app.auth.policy import API_KEY_SCOPES
from app.documents import awareness_codec
from app.documents.awareness_codec import AwarenessState
from app.documents.models import Document, Snapshot
from app.rooms.models import RoomAccess
from tests import factories
from tests.conftest import LiveServer
from tests.cross_tenant import CASES, LIVE_CASES, Case, LiveCase, Victim
from tests.documents import YClient, b64
from tests.gql import GQL, create_key, create_org, end_user_token, sign_up
from tests.gqlws import graphql_ws
from tests.realtime import run

ATTACKERS = ("developer", "secret key", "end-user token")
REFUSALS = {"NOT_FOUND", "FORBIDDEN"}


async def _victim(anon: GQL, session_factory) -> Victim:  # type: ignore[no-untyped-def]
    owner = await sign_up(anon)
    slug = f"victim-{uuid.uuid4().hex[:8]}"
    org_id = await create_org(owner, slug=slug)
    room = factories.room_in(uuid.UUID(org_id), slug="secret-room")
    await factories.add(session_factory, room)
    document = Document(room_id=room.id, name="Secret plans", slug="plans")
    await factories.add(session_factory, document)
    snapshot = Snapshot(document_id=document.id, version=1, yjs_state=b"\x00\x00", name="v1")
    await factories.add(session_factory, snapshot)
    _, key_id = await create_key(owner, org_id, "SECRET")
    await owner.gql.data(
        "mutation($o: UUID!) {"
        ' inviteMember(organizationId: $o, email: "friend@victim.test", role: MEMBER) { id } }',
        o=org_id,
    )
    async with session_factory() as session:
        invitation_id = (await session.execute(select(Invitation.id))).scalar_one()
    extra = {"document_id": str(document.id), "snapshot_id": str(snapshot.id)}
    return Victim(org_id, slug, owner.user_id, str(room.id), room.slug, key_id, str(invitation_id), extra)


async def _attacker_credentials(anon: GQL, kind: str) -> dict[str, Any]:
    """Credentials of another organization that has its own room with the same slug (wildcard grants)."""
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    if kind == "developer":
        return {
            "headers": {"authorization": f"Bearer {dev.access_token}"},
            "ws": {"accessToken": dev.access_token},
        }
    secret, _ = await create_key(dev, org_id, "SECRET", scopes=list(API_KEY_SCOPES))
    if kind == "secret key":
        return {"headers": {"authorization": f"Bearer {secret}"}, "ws": {"apiKey": secret}}
    publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
    token = await end_user_token(
        anon.bearer(secret), "mallory", [{"room": "*", "access": ["read", "write", "presence", "comment"]}]
    )
    return {
        "headers": {"authorization": f"Bearer {token}", "x-api-key": publishable},
        "ws": {"apiKey": publishable, "token": token},
    }


def _assert_refused(case: Case, kind: str, body: dict[str, Any]) -> None:
    errors = body.get("errors") or []
    assert errors, f"{case.name} as foreign {kind}: no error, got {body}"
    codes = {e["extensions"]["code"] for e in errors}
    assert codes <= REFUSALS, f"{case.name} as foreign {kind}: {errors}"
    data = body.get("data")
    assert not data or all(value is None for value in data.values()), f"{case.name} leaked {data}"


@pytest.mark.parametrize("kind", ATTACKERS)
async def test_foreign_credentials_never_see_or_touch_another_organization(  # type: ignore[no-untyped-def]
    live_server: LiveServer, session_factory, kind: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        anon = GQL(http)
        victim = await _victim(anon, session_factory)
        credentials = await _attacker_credentials(anon, kind)
        attacker = anon.with_headers(**credentials["headers"])
        for case in (c for c in CASES if c.http):
            _assert_refused(case, kind, await attacker.raw(case.document, **case.variables(victim)))
        async with graphql_ws(live_server.ws_url, credentials["ws"]) as ws:
            for case in (c for c in CASES if c.websocket):
                op = await ws.subscribe(case.document, case.variables(victim))
                message = await ws.receive()
                while message.get("id") != op or message["type"] == "complete":
                    message = await ws.receive()
                body = message["payload"] if message["type"] == "next" else {"errors": message["payload"]}
                _assert_refused(case, kind + " (ws)", body)
        # And nothing changed for the victim.
        async with session_factory() as session:
            document = await session.get(Document, uuid.UUID(victim.extra["document_id"]))
            assert document is not None and document.last_seq == 0 and document.deleted_at is None
            assert document.name == "Secret plans"
            key = await session.get(ApiKey, uuid.UUID(victim.api_key_id))
            assert key is not None and key.status == ApiKeyStatus.ACTIVE and "rooms:write" in key.scopes
        owner_view = await GQL(http).raw("query($v: UUID) { organization(id: $v) { name } }", v=victim.org_id)
        assert owner_view["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"  # anonymous sees nothing


REVOCATIONS = ("member removed", "room made private", "key scopes narrowed")


async def _live_setup(anon: GQL, session_factory, revocation: str):  # type: ignore[no-untyped-def]
    """An organization with a room and a document, credentials that may use them, and the
    owner's call that takes those rights away."""
    owner = await sign_up(anon)
    org_id = await create_org(owner)
    room = factories.room_in(uuid.UUID(org_id), access=RoomAccess.ORGANIZATION)
    await factories.add(session_factory, room)
    document = Document(room_id=room.id, name="Plans")
    await factories.add(session_factory, document)
    secret, _ = await create_key(owner, org_id, "SECRET")
    publishable, publishable_id = await create_key(owner, org_id, "PUBLISHABLE")
    backend = anon.bearer(secret)
    everything = ["read", "write", "presence", "comment"]
    if revocation == "member removed":
        member = await sign_up(anon)
        await factories.add(session_factory, factories.active_member(org_id, member.user_id))
        init: dict[str, Any] = {"accessToken": member.access_token}
        document_, variables = (
            "mutation($o: UUID!, $u: UUID!) { removeMember(organizationId: $o, userId: $u) }",
            {"o": org_id, "u": member.user_id},
        )
    elif revocation == "room made private":
        # No grant names the room: the organization-wide access of end-users is all it has.
        token = await end_user_token(backend, "eve", [{"room": "another-room", "access": everything}])
        init = {"apiKey": publishable, "token": token}
        document_, variables = (
            "mutation($v: UUID!) { updateRoom(id: $v, input: {access: PRIVATE}) { access } }",
            {"v": str(room.id)},
        )
    else:
        token = await end_user_token(backend, "eve", [{"room": str(room.id), "access": everything}])
        init = {"apiKey": publishable, "token": token}
        document_, variables = (
            'mutation($v: UUID!) { updateApiKey(id: $v, input: {scopes: ["rooms:read"]}) { scopes } }',
            {"v": publishable_id},
        )

    async def revoke() -> None:
        await owner.gql.data(document_, **variables)

    return {"room_id": str(room.id), "document_id": str(document.id)}, init, revoke


def _awareness_update(clock: int) -> str:
    state = AwarenessState(client_id=4242, clock=clock, state='{"name":"eve"}')
    return b64(awareness_codec.encode([state]))


@pytest.mark.parametrize("revocation", REVOCATIONS)
async def test_rights_taken_away_reach_sockets_already_open(  # type: ignore[no-untyped-def]
    live_server: LiveServer, session_factory, revocation: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        ids, init, revoke = await _live_setup(GQL(http), session_factory, revocation)
        writer, clocks = YClient(), itertools.count(1)

        def variables(case: LiveCase) -> dict[str, Any]:
            fresh = {**ids, "update": writer.append("x"), "awareness": _awareness_update(next(clocks))}
            return case.variables(fresh)

        cases = [c for c in LIVE_CASES if revocation != "room made private" or not c.needs_write]
        async with graphql_ws(live_server.ws_url, init) as ws:
            streams = {}
            for case in (c for c in cases if c.stream):
                streams[await ws.subscribe(case.document, variables(case))] = case
            for case in (c for c in cases if not c.stream):
                answer = await run(ws, case.document, **variables(case))
                assert not answer.get("errors"), f"{case.name} before the revocation: {answer}"

            await revoke()

            ended: dict[str, str] = {}
            while len(ended) < len(streams):
                message = await ws.receive(timeout=10)
                op = message.get("id")
                if op in streams and message["type"] == "next" and message["payload"].get("errors"):
                    ended[op] = message["payload"]["errors"][0]["extensions"]["code"]
            wrong = {streams[op].name: code for op, code in ended.items() if code not in REFUSALS}
            assert not wrong, f"{revocation}: streams ended with {wrong}"
            for case in (c for c in cases if not c.stream):
                answer = await run(ws, case.document, **variables(case))
                codes = {e["extensions"]["code"] for e in answer.get("errors") or []}
                assert codes and codes <= REFUSALS, f"{revocation}: {case.name} after it: {answer}"
