"""Bad input gets a clear, coded error and changes nothing, over HTTP and over the WebSocket.

What the database cannot store (U+0000, unpaired surrogates), numbers JSON cannot carry (NaN,
Infinity, 1e400, integers of thousands of digits), values nested past any real use, malformed
bodies and messages: each is refused where it comes in, with `extensions.code`, never as
INTERNAL_ERROR, an HTTP 5xx, a plain-text body or a socket dropped without a close code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import strawberry
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.documents import awareness_codec
from app.documents.awareness_codec import AwarenessState
from app.graphql.errors import CodedErrors
from tests.documents import APPLY, YClient, b64, create_document
from tests.gql import GQL, PASSWORD, sign_up
from tests.gqlws import PROTOCOL, GraphQLWSClient
from tests.realtime import RoomSetup, error_of, next_of, run, setup_room
from tests.test_cursors import CURSORS, MOVE
from tests.test_room_events import BROADCAST, EVENTS

CODED = {"BAD_REQUEST", "VALIDATION_ERROR", "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}
ROOM = "query($id: UUID!) { room(id: $id) { name metadata } }"
SNAPSHOT = "mutation($d: UUID!, $v: String!) { createDocumentSnapshot(documentId: $d, name: $v) { id } }"
SET_METADATA = "mutation($id: UUID!, $m: JSON) { updateRoom(id: $id, input: {metadata: $m}) { id } }"
NOWHERE = '"00000000-0000-0000-0000-000000000000"'
UPDATE_ROOM = "mutation($id: UUID!, $input: UpdateRoomInput!) { updateRoom(id: $id, input: $input) { id } }"


def _refusal(response: httpx.Response) -> dict[str, Any]:
    """The first error of a refused request, which must be coded JSON and not a 5xx."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    errors = response.json()["errors"]
    assert errors and all("code" in e["extensions"] for e in errors), errors
    assert not {e["extensions"]["code"] for e in errors} & {"INTERNAL_ERROR"}, errors
    return errors[0]  # type: ignore[no-any-return]


async def _post(
    http: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(
        "/graphql", content=body, headers={"content-type": "application/json", **(headers or {})}
    )


MALFORMED_BODIES = {
    "null": b"null",
    "a number": b"42",
    "a string": b'"str"',
    "a list": b"[]",
    "no query": b"{}",
    "a query that is not text": b'{"query": 1}',
    "variables that are not an object": b'{"query": "{ health { ok } }", "variables": "x"}',
    "invalid UTF-8": b'{"query": "\xff"}',
    "truncated JSON": b'{"query": ',
    "JSON nested 5,000 deep": b"[" * 5000 + b"]" * 5000,
    "an integer of 4,301 digits": b'{"query": "{ health { ok } }", "variables": {"x": ' + b"1" * 4301 + b"}}",
}


@pytest.mark.parametrize("name", list(MALFORMED_BODIES))
async def test_a_malformed_body_gets_a_coded_json_error(client: httpx.AsyncClient, name: str) -> None:
    error = _refusal(await _post(client, MALFORMED_BODIES[name]))
    assert error["extensions"]["code"] in {"BAD_REQUEST", "VALIDATION_ERROR"}


async def test_other_methods_and_content_types_get_coded_json_errors(client: httpx.AsyncClient) -> None:
    assert _refusal(await client.put("/graphql", content=b"{}"))["extensions"]["code"] == "BAD_REQUEST"
    plain = await client.post(
        "/graphql", content=b"{ health { ok } }", headers={"content-type": "text/plain"}
    )
    assert _refusal(plain)["extensions"]["code"] == "BAD_REQUEST"


UNSTORABLE = {"a lone surrogate": "x\ud800y", "a NUL": "x\x00y"}
# Fields that failed with INTERNAL_ERROR on such text (either backend); anonymous ones first.
TEXT_FIELDS = {
    "signUp": (
        "mutation($v: String!) { signUp(input: {email: $v, password: $v, name: $v}) { accessToken } }"
    ),
    "logIn": "mutation($v: String!) { logIn(input: {email: $v, password: $v}) { accessToken } }",
    "refreshSession": "mutation($v: String!) { refreshSession(refreshToken: $v) { accessToken } }",
    "verifyEmail": "mutation($v: String!) { verifyEmail(token: $v) { id } }",
    "requestPasswordReset": "mutation($v: String!) { requestPasswordReset(email: $v) }",
}


@pytest.mark.parametrize("kind", list(UNSTORABLE))
async def test_unstorable_text_is_refused_in_every_field(live_server, session_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    text = UNSTORABLE[kind]
    room = await setup_room(live_server, session_factory)
    document_id = await create_document(room)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        anon = GQL(http)
        for name, document in TEXT_FIELDS.items():
            body = json.dumps({"query": document, "variables": {"v": text}}).encode()
            error = _refusal(await _post(http, body))
            assert error["extensions"]["code"] == "VALIDATION_ERROR", (name, error)
            assert error["extensions"]["field"] == "v"
        developer = room.dev.gql
        calls = [
            (
                "query($o: UUID!, $v: String) { rooms(organizationId: $o, search: $v) { edges { cursor } } }",
                {"o": room.org_id, "v": text},
            ),
            (UPDATE_ROOM, {"id": room.room_id, "input": {"name": text}}),
            (UPDATE_ROOM, {"id": room.room_id, "input": {"metadata": {"note": text}}}),
            (UPDATE_ROOM, {"id": room.room_id, "input": {"metadata": {text: 1}}}),
            (
                "mutation($r: UUID!, $v: String!) { createDocument(roomId: $r, input: {name: $v}) { id } }",
                {"r": room.room_id, "v": text},
            ),
            (SNAPSHOT, {"d": document_id, "v": text}),
            (APPLY, {"id": document_id, "update": YClient().append("x"), "origin": text}),
        ]
        for document, variables in calls:
            body = json.dumps({"query": document, "variables": variables}).encode()
            error = _refusal(await _post(http, body, developer.headers))
            assert error["extensions"]["code"] == "VALIDATION_ERROR", (document, error)
        # Nothing changed: the room is as it was, the document has no update.
        seen = (await developer.data(ROOM, id=room.room_id))["room"]
        assert seen["name"] != text and seen["metadata"] == {}
        assert (await developer.data("query($d: UUID!) { document(id: $d) { seq } }", d=document_id))[
            "document"
        ]["seq"] == 0
        assert await anon.raw("{ health { ok } }")


NOT_JSON_NUMBERS = {"NaN": b"NaN", "Infinity": b"Infinity", "-Infinity": b"-Infinity", "1e400": b"1e400"}


@pytest.mark.parametrize("number", list(NOT_JSON_NUMBERS))
async def test_non_finite_numbers_are_refused_and_never_stored(
    live_server, session_factory, number: str
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        raw = NOT_JSON_NUMBERS[number]
        variables = b'{"id": "' + room.room_id.encode() + b'", "m": {"x": ' + raw + b"}}"
        body = b'{"query": ' + json.dumps(SET_METADATA).encode() + b', "variables": ' + variables + b"}"
        error = _refusal(await _post(http, body, room.dev.gql.headers))
        assert error["extensions"]["code"] == "VALIDATION_ERROR" and error["extensions"]["field"] == "m"
        assert (await room.dev.gql.data(ROOM, id=room.room_id))["room"]["metadata"] == {}


async def test_literals_in_the_document_meet_the_same_limits(client: httpx.AsyncClient) -> None:
    anon = GQL(client)
    cases = {
        "a NUL in a string literal": 'mutation { requestPasswordReset(email: "a\\u0000b") }',
        "a lone surrogate in a string literal": 'mutation { requestPasswordReset(email: "a\\ud800b") }',
        "a float literal past double range": f"mutation {{ moveCursor(roomId: {NOWHERE}, x: 1e400) }}",
        "an integer literal of 5,001 digits": f"{{ rooms(organizationId: {NOWHERE}, first: {'1' * 5001})"
        " { edges { cursor } } }",
        "a JSON literal nested 40 deep": f'mutation {{ broadcastEvent(roomId: {NOWHERE}, type: "x",'
        f" payload: {'[' * 40 + ']' * 40}) }}",
    }
    for name, query in cases.items():
        error = await anon.error(query)
        # (graphql-core's lexer itself refuses an escaped lone surrogate: a syntax error)
        assert error["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}, (
            name,
            error,
        )


async def test_documents_nested_past_the_stack_are_refused_with_a_code(client: httpx.AsyncClient) -> None:
    anon = GQL(client)
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(300))
    error = await anon.error("query { ...F0 } " + chain + " fragment F300 on Query { health { ok } }")
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    deep = await anon.raw("query($x: JSON) { health { ok } }", x=json.loads("[" * 900 + "]" * 900))
    assert deep["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"


async def test_an_unexpected_error_is_masked_with_a_request_id_and_logged_once(caplog) -> None:  # type: ignore[no-untyped-def]
    @strawberry.type
    class Query:
        @strawberry.field
        def broken(self) -> str:
            raise RuntimeError("a bug")

    schema = strawberry.Schema(query=Query, extensions=[CodedErrors])
    with caplog.at_level(logging.ERROR, logger="syncforge.graphql"):
        result = await schema.execute("{ broken }")
    assert result.errors is not None
    assert result.errors[0].extensions["code"] == "INTERNAL_ERROR" and result.errors[0].message != "a bug"
    assert len([r for r in caplog.records if "unexpected error" in r.getMessage()]) == 1


# --- over the WebSocket ---------------------------------------------------------------------


async def _closed_with(room: RoomSetup, message: str) -> tuple[int, str]:
    async with room.client("eve") as ws:
        await ws.connection.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.receive(timeout=10)
    frame = closed.value.rcvd
    assert frame is not None, "closed without a close frame (1006)"
    return frame.code, frame.reason


async def test_malformed_websocket_messages_close_with_4400_and_a_reason(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    messages = {
        "an id that is an object": json.dumps({"type": "complete", "id": {"a": 1}}),
        "variables that are text": json.dumps(
            {"type": "subscribe", "id": "1", "payload": {"query": "{ health { ok } }", "variables": "x"}}
        ),
        "variables nested 5,000 deep": '{"type": "subscribe", "id": "1", "payload": '
        '{"query": "{ health { ok } }", "variables": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}",
        "not JSON": "{nope",
        "no type": json.dumps({"id": "1"}),
    }
    for name, message in messages.items():
        code, reason = await _closed_with(room, message)
        assert code == 4400 and reason, (name, code, reason)


async def test_bad_values_over_the_websocket_are_refused_and_never_reach_the_room(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    document_id = await create_document(room)
    async with room.client("eve") as eve, room.client("watch") as watch:
        events = await watch.subscribe(EVENTS, {"room": room.room_id})
        cursors = await watch.subscribe(CURSORS, {"room": room.room_id})
        refusals = []
        for payload in ('{"x": NaN}', '{"x": Infinity}', '{"x": 1e400}'):
            op = "nan" + payload[6:9]
            await eve.connection.send(
                '{"type": "subscribe", "id": "'
                + op
                + '", "payload": {"query": '
                + json.dumps(BROADCAST)
                + ', "variables": {"room": "'
                + room.room_id
                + '", "type": "t", "payload": '
                + payload
                + "}}}"
            )
            refusals.append(await error_of(eve, op))
        await eve.connection.send(
            '{"type": "subscribe", "id": "far", "payload": {"query": '
            + json.dumps(MOVE)
            + ', "variables": {"room": "'
            + room.room_id
            + '", "x": 1e400, "y": 1}}}'
        )
        refusals.append(await error_of(eve, "far"))
        state = AwarenessState(client_id=7, clock=1, state="[" * 3000 + "]" * 3000)
        deep_awareness = b64(awareness_codec.encode([state]))
        answer = await run(
            eve,
            "mutation($d: UUID!, $u: String!) { updateAwareness(documentId: $d, update: $u) }",
            d=document_id,
            u=deep_awareness,
        )
        refusals.append(answer["errors"][0])
        assert [r["extensions"]["code"] for r in refusals] == ["VALIDATION_ERROR"] * 5, refusals
        # The socket is still open and the room still works: the next event and move arrive.
        await run(eve, BROADCAST, room=room.room_id, type="ok", payload={"x": 1.5})
        assert (await next_of(watch, events))["roomEvents"]["payload"] == {"x": 1.5}
        await run(eve, MOVE, room=room.room_id, x=2.0, y=3.0)
        assert (await next_of(watch, cursors))["cursors"]["cursors"][0]["x"] == 2.0


async def test_the_operation_limit_per_connection_is_a_coded_error(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with room.client("eve") as ws:
        for _ in range(100):
            await ws.subscribe(CURSORS, {"room": room.room_id})
        over = await ws.subscribe(CURSORS, {"room": room.room_id})
        error = await error_of(ws, over)
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert error["extensions"]["reason"] == "TOO_MANY_OPERATIONS"
        # Hot mutations are not operations that stay: they still run.
        assert (await run(ws, MOVE, room=room.room_id, x=1.0, y=1.0))["data"]["moveCursor"] is True


async def test_a_websocket_without_the_protocol_handshake_is_not_dropped(live_server) -> None:  # type: ignore[no-untyped-def]
    """connection_init that is not an object closes with 4400 (not 1006)."""
    async with connect(live_server.ws_url, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        client = GraphQLWSClient(connection)
        await client.send({"type": "connection_init", "payload": "x"})
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_a_developer_may_not_sign_up_with_text_the_database_cannot_store(live_server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        anon = GQL(http)
        developer = await sign_up(anon)
        body = json.dumps(
            {"query": TEXT_FIELDS["logIn"], "variables": {"v": developer.email + "\x00"}}
        ).encode()
        assert _refusal(await _post(http, body))["extensions"]["code"] == "VALIDATION_ERROR"
        ok = await anon.data(
            "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { accessToken } }",
            e=developer.email,
            p=PASSWORD,
        )
        assert ok["logIn"]["accessToken"]


async def test_operation_names_variable_names_and_credentials_are_checked_too(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        for body in (
            {"query": "query A { health { ok } }", "operationName": "\ud800"},
            {"query": "{ health { ok } }", "variables": {"\ud800": 1}},
        ):
            error = _refusal(await _post(http, json.dumps(body).encode()))
            assert error["extensions"]["code"] == "VALIDATION_ERROR", error
    async with room.client("eve") as ws:
        op = await ws.subscribe("query A { health { ok } }")
        await ws.send(
            {
                "id": "named",
                "type": "subscribe",
                "payload": {"query": "query A { health { ok } }", "operationName": "B"},
            }
        )
        assert (await error_of(ws, "named"))["extensions"]["code"] == "BAD_REQUEST"
        assert (await next_of(ws, op))["health"]["ok"] is True
    async with connect(live_server.ws_url, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        client = GraphQLWSClient(connection)
        await client.send(
            {"type": "connection_init", "payload": {"apiKey": room.publishable[:-1] + "\ud800"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
