"""Runs tests/cross_tenant.py's matrix for every kind of foreign credential, over HTTP and WS."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.accounts.models import Invitation
from app.auth.policy import API_KEY_SCOPES
from app.documents.models import Document, Snapshot
from tests import factories
from tests.conftest import LiveServer
from tests.cross_tenant import CASES, Case, Victim
from tests.gql import GQL, create_key, create_org, end_user_token, sign_up
from tests.gqlws import graphql_ws

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
        owner_view = await GQL(http).raw("query($v: UUID) { organization(id: $v) { name } }", v=victim.org_id)
        assert owner_view["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"  # anonymous sees nothing
