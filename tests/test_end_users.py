"""End-user tokens: minted by secret keys, used by browsers with a publishable key, on HTTP and WS."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from app.accounts.end_user_models import EndUser
from tests import factories
from tests.conftest import LiveServer
from tests.gql import GQL, create_key, create_org, end_user_token, sign_up
from tests.gqlws import PROTOCOL, graphql_ws

ROOM = "query($id: UUID) { room(id: $id) { slug } }"


async def _setup(anon: GQL, session_factory):  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    org = uuid.UUID(org_id)
    rooms = {
        name: factories.room_in(org, slug=name)
        for name in ("team-a:design", "team-a:notes", "team-b:plans", "lobby")
    }
    await factories.add(session_factory, *rooms.values())
    secret, _ = await create_key(dev, org_id, "SECRET")
    publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
    return dev, org_id, rooms, anon.bearer(secret), publishable


async def test_end_user_tokens_grant_rooms_by_id_or_prefix(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    _, org_id, rooms, backend, publishable = await _setup(anon, session_factory)
    token = await end_user_token(
        backend,
        "user-42",
        [
            {"room": "team-a:*", "access": ["read", "presence"]},
            {"room": str(rooms["lobby"].id), "access": ["read"]},
        ],
        userInfo={"name": "Grace", "avatar": "https://x.test/g.png", "color": "#00aa00"},
    )
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "user-42" and claims["org"] == org_id
    browser = anon.bearer(token, **{"x-api-key": publishable})
    for name in ("team-a:design", "team-a:notes", "lobby"):
        assert (await browser.data(ROOM, id=str(rooms[name].id)))["room"]["slug"] == name
    hidden = await browser.error(ROOM, id=str(rooms["team-b:plans"].id))
    assert hidden["extensions"]["code"] == "NOT_FOUND"  # a room the token does not name does not exist
    # Organization-level reads are not for end-users.
    org_read = await browser.error("query($id: UUID) { organization(id: $id) { id } }", id=org_id)
    assert org_read["extensions"]["code"] == "FORBIDDEN"

    async with session_factory() as session:
        end_user = (await session.execute(select(EndUser))).scalar_one()
    assert (end_user.external_id, end_user.name, end_user.color) == ("user-42", "Grace", "#00aa00")


async def test_who_may_mint_and_how_tokens_fail(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev, _, rooms, backend, publishable = await _setup(anon, session_factory)
    grant = [{"room": "lobby", "access": ["read"]}]
    for caller in (dev.gql, anon.with_headers(**{"x-api-key": publishable})):
        denied = await caller.error(
            "mutation($i: CreateEndUserTokenInput!) { createEndUserToken(input: $i) { token } }",
            i={"userId": "u1", "permissions": grant},
        )
        assert denied["extensions"]["code"] == "FORBIDDEN"
    for bad, field in (
        ({"userId": "has spaces", "permissions": grant}, "userId"),
        ({"userId": "u1", "permissions": [{"room": "lobby", "access": ["admin"]}]}, "permissions"),
        ({"userId": "u1", "permissions": grant, "ttlSeconds": 10**7}, "ttlSeconds"),
    ):
        error = await backend.error(
            "mutation($i: CreateEndUserTokenInput!) { createEndUserToken(input: $i) { token } }", i=bad
        )
        assert error["extensions"]["field"] == field

    token = await end_user_token(backend, "u1", grant)
    room_id = str(rooms["lobby"].id)
    # Without the publishable key, or with another organization's, the token is refused.
    assert (await anon.bearer(token).error(ROOM, id=room_id))["extensions"]["code"] == "UNAUTHORIZED"
    other_dev = await sign_up(anon)
    other_key, _ = await create_key(other_dev, await create_org(other_dev), "PUBLISHABLE")
    foreign = await anon.bearer(token, **{"x-api-key": other_key}).error(ROOM, id=room_id)
    assert foreign["extensions"]["code"] == "UNAUTHORIZED"
    # Expired or tampered tokens are refused.
    claims = pyjwt.decode(token, options={"verify_signature": False})
    expired = pyjwt.encode({**claims, "exp": claims["iat"] - 10}, "x" * 32, "HS256")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad_token in (expired, tampered):
        error = await anon.bearer(bad_token, **{"x-api-key": publishable}).error(ROOM, id=room_id)
        assert error["extensions"]["code"] == "UNAUTHORIZED"


@pytest.fixture
async def live_anon(live_server: LiveServer):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        yield GQL(http)


async def test_websocket_connection_init_authenticates(
    live_server: LiveServer, live_anon: GQL, session_factory
) -> None:  # type: ignore[no-untyped-def]
    dev, _, rooms, backend, publishable = await _setup(live_anon, session_factory)
    token = await end_user_token(backend, "ws-user", [{"room": "lobby", "access": ["read"]}])
    room_id = str(rooms["lobby"].id)

    async with graphql_ws(live_server.ws_url, {"apiKey": publishable, "token": token}) as ws:
        op = await ws.subscribe(ROOM, {"id": room_id})
        assert (await ws.receive())["payload"] == {"data": {"room": {"slug": "lobby"}}}
        assert (await ws.receive()) == {"id": op, "type": "complete"}
        other = await ws.subscribe(ROOM, {"id": str(rooms["team-b:plans"].id)})
        message = await ws.receive()
        assert message["id"] == other and message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    async with graphql_ws(live_server.ws_url, {"accessToken": dev.access_token}) as ws:
        await ws.subscribe("{ me { id } }")
        assert (await ws.receive())["payload"] == {"data": {"me": {"id": dev.user_id}}}

    for payload, reason in (
        ({"apiKey": publishable, "token": "not-a-token"}, "invalid end-user token"),
        ({"apiKey": "pk_live_" + "Z" * 40}, "invalid, revoked or expired API key"),
        ({"accessToken": "nope"}, "invalid or expired access token"),
    ):
        code, text = await _rejected(live_server.ws_url, payload)
        assert code == 4403 and text.startswith(reason), (payload, code, text)


async def test_websocket_origin_is_checked_at_the_handshake(live_server: LiveServer, live_anon: GQL) -> None:
    dev = await sign_up(live_anon)
    org_id = await create_org(dev)
    key, _ = await create_key(dev, org_id, "PUBLISHABLE", allowedOrigins=["https://app.example.com"])
    code, text = await _rejected(live_server.ws_url, {"apiKey": key}, origin="https://evil.example.com")
    assert code == 4403 and "origin" in text
    async with connect(
        live_server.ws_url,
        subprotocols=[PROTOCOL],
        origin="https://app.example.com",  # type: ignore[list-item,arg-type]
    ) as connection:
        await connection.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert '"connection_ack"' in await asyncio.wait_for(connection.recv(), 5)


async def _rejected(url: str, payload: dict[str, str], origin: str | None = None) -> tuple[int, str]:
    async with connect(url, subprotocols=[PROTOCOL], origin=origin) as connection:  # type: ignore[list-item,arg-type]
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(connection.recv(), 5)
        assert connection.close_code is not None
        return connection.close_code, connection.close_reason or ""


async def test_viewer_describes_each_kind_of_caller(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev, org_id, _, backend, publishable = await _setup(anon, session_factory)
    query = "{ viewer { kind userId organizationId scopes info } }"
    assert (await anon.data(query))["viewer"]["kind"] == "anonymous"
    assert (await dev.gql.data(query))["viewer"] == {
        "kind": "developer",
        "userId": dev.user_id,
        "organizationId": None,
        "scopes": [],
        "info": None,
    }
    assert (await backend.data(query))["viewer"]["kind"] == "secret_key"
    token = await end_user_token(
        backend, "u-7", [{"room": "lobby", "access": ["read"]}], userInfo={"name": "Ann"}
    )
    end_user = (await anon.bearer(token, **{"x-api-key": publishable}).data(query))["viewer"]
    assert (end_user["kind"], end_user["userId"], end_user["organizationId"]) == ("end_user", "u-7", org_id)
    assert end_user["info"]["name"] == "Ann"


async def test_room_access_setting_opens_rooms_beyond_the_grants(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    from app.rooms.models import RoomAccess

    dev = await sign_up(anon)
    org = uuid.UUID(await create_org(dev))
    rooms = {
        access: factories.room_in(org, slug=f"{access.value}-room", access=access) for access in RoomAccess
    }
    await factories.add(session_factory, *rooms.values())
    secret, _ = await create_key(dev, str(org), "SECRET")
    publishable, _ = await create_key(dev, str(org), "PUBLISHABLE")
    token = await end_user_token(anon.bearer(secret), "u1", [{"room": "Other-Room", "access": ["read"]}])
    end_user = anon.bearer(token, **{"x-api-key": publishable})
    visitor = anon.with_headers(**{"x-api-key": publishable})
    expected = {
        # access: (end-user without a grant, visitor with only the publishable key)
        RoomAccess.PRIVATE: ("NOT_FOUND", "NOT_FOUND"),
        RoomAccess.ORGANIZATION: (None, "NOT_FOUND"),
        RoomAccess.PUBLIC: (None, None),
    }
    for access, outcomes in expected.items():
        for caller, outcome in zip((end_user, visitor), outcomes, strict=True):
            body = await caller.raw(ROOM, id=str(rooms[access].id))
            if outcome is None:
                assert body["data"]["room"]["slug"] == f"{access.value}-room", body
            else:
                assert body["errors"][0]["extensions"]["code"] == outcome, (access, body)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["perms"][0]["room"] == "other-room"  # patterns are matched like slugs: lowercase


async def test_reminting_for_a_known_user_skips_the_database_until_the_profile_changes(  # type: ignore[no-untyped-def]
    anon: GQL, session_factory
) -> None:
    _, _org_id, _rooms, backend, _ = await _setup(anon, session_factory)
    grants = [{"room": "lobby", "access": ["read"]}]
    first = await end_user_token(backend, "user-7", grants, userInfo={"name": "Ada"})
    async with session_factory() as session:
        row = (await session.execute(select(EndUser))).scalar_one()
        seen_at = row.last_seen_at
    again = await end_user_token(backend, "user-7", grants, userInfo={"name": "Ada"})
    claims = [pyjwt.decode(t, options={"verify_signature": False}) for t in (first, again)]
    assert claims[0]["eid"] == claims[1]["eid"] == str(row.id)  # the same end-user, signed anew
    async with session_factory() as session:
        assert (await session.get(EndUser, row.id)).last_seen_at == seen_at  # type: ignore[union-attr]
    # A changed profile is written at once, whatever the cache holds.
    await end_user_token(backend, "user-7", grants, userInfo={"name": "Ada L.", "color": "#112233"})
    async with session_factory() as session:
        changed = (await session.execute(select(EndUser))).scalar_one()
    assert (changed.id, changed.name, changed.color) == (row.id, "Ada L.", "#112233")
    bad = await backend.error(
        "mutation($input: CreateEndUserTokenInput!) { createEndUserToken(input: $input) { token } }",
        input={"userId": "user-7", "permissions": grants, "userInfo": {"name": "Ada"}, "ttlSeconds": 5},
    )
    assert bad["extensions"]["code"] == "VALIDATION_ERROR"  # a known user's input is checked too


async def test_minting_over_the_http_fast_path_answers_as_graphql_execution_does(  # type: ignore[no-untyped-def]
    anon: GQL, session_factory
) -> None:
    """createEndUserToken skips Strawberry's execution over HTTP (a planned document); a document
    with a directive at its root is not planned and is executed. Both give the same answers."""
    dev, _, _rooms, backend, publishable = await _setup(anon, session_factory)
    selection = "token expiresAt endUserId __typename"
    fast = f"mutation($i: CreateEndUserTokenInput!) {{ t: createEndUserToken(input: $i) {{ {selection} }} }}"
    executed = (
        "mutation($i: CreateEndUserTokenInput!, $yes: Boolean! = true) "
        f"{{ t: createEndUserToken(input: $i) @include(if: $yes) {{ {selection} }} }}"
    )
    grant = [{"room": "lobby", "access": ["read"]}]
    answers = [await backend.raw(doc, i={"userId": "same", "permissions": grant}) for doc in (fast, executed)]
    tokens = [a["data"]["t"] for a in answers]
    assert tokens[0]["endUserId"] == tokens[1]["endUserId"] and tokens[0]["__typename"] == "EndUserToken"
    assert set(tokens[0]) == set(tokens[1]) and tokens[0]["expiresAt"][:16] == tokens[1]["expiresAt"][:16]
    assert pyjwt.decode(tokens[0]["token"], options={"verify_signature": False})["sub"] == "same"

    def shape(answer: dict) -> object:  # type: ignore[type-arg]
        errors = [
            (e["message"], e.get("path"), {k: v for k, v in e["extensions"].items() if k != "requestId"})
            for e in answer["errors"]
        ]
        return answer["data"], errors

    for caller, variables in (
        (backend, {"i": {"userId": "u1", "permissions": grant, "ttlSeconds": 10**7}}),  # VALIDATION_ERROR
        (backend, {"i": {"userId": "u1", "permissions": [{"room": "lobby", "access": ["admin"]}]}}),
        (anon.with_headers(**{"x-api-key": publishable}), {"i": {"userId": "u1", "permissions": grant}}),
        (dev.gql, {"i": {"userId": "u1", "permissions": grant}}),  # FORBIDDEN: not a secret key
        (anon.bearer("sk_live_nope"), {"i": {"userId": "u1", "permissions": grant}}),  # UNAUTHORIZED
        (backend, {"i": {"userId": 5, "permissions": "no"}}),  # a wrong variable: executed either way
    ):
        fast_answer, executed_answer = [await caller.raw(doc, **variables) for doc in (fast, executed)]
        assert shape(fast_answer) == shape(executed_answer), (fast_answer, executed_answer)


async def test_a_remembered_token_is_still_refused_once_it_expires() -> None:
    """Verified tokens are remembered (reconnects present them again), never past their expiry."""
    from datetime import timedelta

    from app.accounts import end_user_tokens
    from app.errors import Unauthorized
    from app.security import jwt
    from app.security.keys import Keys

    keys, org = Keys.from_secret("s" * 40), uuid.uuid4()
    claims = {"org": str(org), "eid": str(uuid.uuid4()), "kid": str(uuid.uuid4()), "info": {}, "perms": []}
    token = jwt.encode(
        keys.jwt, subject="u", audience=jwt.END_USER_AUDIENCE, ttl=timedelta(seconds=1), **claims
    )

    def verify(k: Keys) -> object:
        return end_user_tokens.principal_from_token(
            k, token, organization_id=org, api_key_id=uuid.uuid4(), scopes=frozenset()
        )

    assert verify(keys).external_id == "u"  # type: ignore[attr-defined]
    with pytest.raises(Unauthorized):
        verify(Keys.from_secret("t" * 40))  # another deployment's key: not the remembered answer
    await asyncio.sleep(1 + jwt.LEEWAY_S + 0.5)
    with pytest.raises(Unauthorized):
        verify(keys)
