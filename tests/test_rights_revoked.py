"""Rights taken away reach connections already open: a room's password changed, a key's allowed
origins narrowed, a member demoted, and all of it in every process (the matrix of streams and hot
mutations is in tests/test_cross_tenant.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.accounts.models import ApiKeyType
from app.auth.key_cache import KeySnapshot
from app.auth.principal import PublishableKeyClient
from app.documents import awareness_codec
from app.documents.awareness_codec import AwarenessState
from app.documents.models import Document
from app.realtime.access_epoch import AccessEpoch
from app.realtime.credential_watch import CredentialWatch
from app.realtime.room_access import memoized
from app.settings import Settings
from tests import factories
from tests.backends import IS_POSTGRES
from tests.documents import APPLY, UPDATES, YClient, apply_http, b64, create_document
from tests.gql import GQL, create_key, create_org, sign_up
from tests.gqlws import PROTOCOL, GraphQLWSClient, graphql_ws
from tests.processes import processes
from tests.realtime import PRESENCE, error_of, next_of, run, setup_room
from tests.test_cursors import CURSORS, MOVE

UPDATE_ROOM = "mutation($v: UUID!, $input: UpdateRoomInput!) { updateRoom(id: $v, input: $input) { id } }"
UPDATE_KEY = "mutation($v: UUID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $v, input: $input) { id } }"
CHANGE_ROLE = """mutation($o: UUID!, $u: UUID!) {
  changeMemberRole(organizationId: $o, userId: $u, role: VIEWER) { role } }"""


async def test_a_new_room_password_ends_presence_joined_with_the_old_one(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    await room.dev.gql.data(UPDATE_ROOM, v=room.room_id, input={"password": "first secret"})
    async with room.client("eve") as eve:
        presence = await eve.subscribe(PRESENCE, {"room": room.room_id, "password": "first secret"})
        await next_of(eve, presence)
        await eve.subscribe(CURSORS, {"room": room.room_id})
        # A change that keeps the password rechecks without refusing (and without a new argon2).
        await room.dev.gql.data(UPDATE_ROOM, v=room.room_id, input={"name": "Renamed"})
        assert not (await run(eve, MOVE, room=room.room_id, x=1.0, y=1.0)).get("errors")

        await room.dev.gql.data(UPDATE_ROOM, v=room.room_id, input={"password": "second secret"})
        error = await error_of(eve, presence)
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["extensions"]["reason"] == "WRONG_PASSWORD"
        # Cursors never needed the password: they go on.
        assert not (await run(eve, MOVE, room=room.room_id, x=2.0, y=2.0)).get("errors")
        again = await eve.subscribe(PRESENCE, {"room": room.room_id, "password": "second secret"})
        assert (await next_of(eve, again))["roomPresence"]["kind"] == "SYNC"


async def test_a_narrowed_list_of_origins_closes_connections_from_the_others(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        key, key_id = await create_key(
            room.dev,
            room.org_id,
            "PUBLISHABLE",
            allowedOrigins=["https://app.example", "https://old.example"],
        )
        token = await room.token("eve")
        init = {"apiKey": key, "token": token}
        kept, dropped = (
            connect(live_server.ws_url, subprotocols=[PROTOCOL], origin=origin)  # type: ignore[list-item, arg-type]
            for origin in ("https://app.example", "https://old.example")
        )
        async with kept as kept_socket, dropped as dropped_socket:
            clients = [GraphQLWSClient(kept_socket), GraphQLWSClient(dropped_socket)]
            for client in clients:
                await client.send({"type": "connection_init", "payload": init})
                assert (await client.receive())["type"] == "connection_ack"
            await (
                GQL(http)
                .bearer(room.dev.access_token)
                .data(UPDATE_KEY, v=key_id, input={"allowedOrigins": ["https://app.example"]})
            )
            with pytest.raises(ConnectionClosed) as closed:
                await clients[1].receive(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
            assert "origin" in closed.value.rcvd.reason
            assert not (await run(clients[0], MOVE, room=room.room_id, x=1.0, y=1.0)).get("errors")


async def test_a_demoted_member_keeps_reading_but_can_no_longer_write(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        anon = GQL(http)
        owner = await sign_up(anon)
        org_id = await create_org(owner)
        room = factories.room_in(uuid.UUID(org_id))
        await factories.add(session_factory, room)
        document = Document(room_id=room.id, name="Plans")
        await factories.add(session_factory, document)
        member = await sign_up(anon)
        await factories.add(session_factory, factories.active_member(org_id, member.user_id))
        writer, doc_id = YClient(), str(document.id)
        async with graphql_ws(live_server.ws_url, {"accessToken": member.access_token}) as ws:
            updates = await ws.subscribe(UPDATES, {"id": doc_id})
            assert not (await run(ws, APPLY, id=doc_id, update=writer.append("a"))).get("errors")

            await owner.gql.data(CHANGE_ROLE, o=org_id, u=member.user_id)

            refused = await run(ws, APPLY, id=doc_id, update=writer.append("b"))
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            # Reading is still allowed: the stream goes on and gets the owner's update.
            owner_client = YClient()
            await apply_http(owner.gql, doc_id, owner_client.append("from the owner"))
            assert (await next_of(ws, updates))["documentUpdates"]["seq"] == 2


@pytest.mark.skipif(not IS_POSTGRES, reason="several processes share PostgreSQL and Redis")
async def test_removing_a_member_reaches_their_sockets_on_every_process(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    with processes(settings, settings.redis_url or "", tmp_path, 2) as (a, b):
        async with httpx.AsyncClient(base_url=a.url) as http:
            anon = GQL(http)
            owner = await sign_up(anon)
            org_id = await create_org(owner)
            room = factories.room_in(uuid.UUID(org_id))
            await factories.add(session_factory, room)
            member = await sign_up(anon)
            await factories.add(session_factory, factories.active_member(org_id, member.user_id))
            async with graphql_ws(b.ws_url, {"accessToken": member.access_token}) as ws:
                cursors = await ws.subscribe(CURSORS, {"room": str(room.id)})
                assert not (await run(ws, MOVE, room=str(room.id), x=1.0, y=1.0)).get("errors")

                # Removed through process a; the member's socket is on process b.
                await owner.gql.data(
                    "mutation($o: UUID!, $u: UUID!) { removeMember(organizationId: $o, userId: $u) }",
                    o=org_id,
                    u=member.user_id,
                )
                assert (await error_of(ws, cursors))["extensions"]["code"] == "NOT_FOUND"
                refused = await run(ws, MOVE, room=str(room.id), x=2.0, y=2.0)
                assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_trashed_documents_awareness_ends_and_is_refused(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    document_id = await create_document(room)
    awareness = "mutation($d: UUID!, $u: String!) { updateAwareness(documentId: $d, update: $u) }"
    state = b64(awareness_codec.encode([AwarenessState(client_id=9, clock=1, state='{"n":1}')]))
    async with room.client("eve") as eve:
        stream = await eve.subscribe(
            "subscription($d: UUID!) { documentAwareness(documentId: $d) { full } }", {"d": document_id}
        )
        assert not (await run(eve, awareness, d=document_id, u=state)).get("errors")
        await room.backend.data("mutation($d: UUID!) { trashDocument(id: $d) { id } }", d=document_id)
        assert (await error_of(eve, stream))["extensions"]["code"] == "NOT_FOUND"
        again = b64(awareness_codec.encode([AwarenessState(client_id=9, clock=2, state='{"n":2}')]))
        refused = await run(eve, awareness, d=document_id, u=again)
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def _ticket(room: str) -> SimpleNamespace:
    return SimpleNamespace(room_id=room)


async def test_a_rooms_change_asks_again_only_for_that_room() -> None:
    epochs = AccessEpoch()
    context = SimpleNamespace(state=SimpleNamespace(access_epoch=epochs), room_tickets={})
    asked: list[str] = []

    async def ask(room: str) -> SimpleNamespace:
        asked.append(room)
        return _ticket(room)

    for room in ("a", "b", "a", "b"):
        await memoized(context, room, lambda room=room: ask(room))  # type: ignore[misc]
    assert asked == ["a", "b"]
    epochs.bump_room("a")
    for room in ("a", "b"):
        await memoized(context, room, lambda room=room: ask(room))  # type: ignore[misc]
    assert asked == ["a", "b", "a"]
    epochs.bump()  # a member's or a key's change: every room
    for room in ("a", "b"):
        await memoized(context, room, lambda room=room: ask(room))  # type: ignore[misc]
    assert asked == ["a", "b", "a", "a", "b"]

    # A check that a change of its room overtook is not kept.
    async def slow(room: str) -> SimpleNamespace:
        asked.append(room)
        epochs.bump_room(room)  # the room changes while it is being checked
        return _ticket(room)

    epochs.bump()
    await memoized(context, "a", lambda: slow("a"))
    await memoized(context, "a", lambda: ask("a"))
    assert asked[-2:] == ["a", "a"]


async def test_the_last_read_of_a_changed_key_decides_even_when_an_older_one_returns_later() -> None:
    key_id = uuid.uuid4()
    reads: list[asyncio.Future[dict[uuid.UUID, Any]]] = []

    async def current_keys(_ids: Any) -> dict[uuid.UUID, Any]:
        future: asyncio.Future[dict[uuid.UUID, Any]] = asyncio.get_running_loop().create_future()
        reads.append(future)
        return await future

    def key(scopes: tuple[str, ...]) -> KeySnapshot:
        return KeySnapshot(key_id, uuid.uuid4(), ApiKeyType.PUBLISHABLE, scopes, (), 1000, None)

    watch = CredentialWatch(current_keys, AccessEpoch())
    principal = PublishableKeyClient(uuid.uuid4(), key_id, frozenset({"rooms:read"}), rate_limit=1000)
    context = SimpleNamespace(principal=principal, streams={})

    async def close(code: int, reason: str) -> None:
        raise AssertionError("not closed")

    watch.watch(context, close)
    watch.key_changed(key_id)  # widened...
    watch.key_changed(key_id)  # ...then narrowed again
    await asyncio.sleep(0)
    reads[1].set_result({key_id: key(("rooms:read",))})
    await asyncio.sleep(0.01)
    reads[0].set_result({key_id: key(("rooms:read", "documents:read"))})  # the older read, last
    await asyncio.sleep(0.01)
    assert context.principal.scopes == {"rooms:read"}
    await watch.stop()
