"""Limits hold on the WebSocket too: operations on a socket count against the API key's and the
address's rate limits like HTTP requests, cursor moves and broadcasts have per-connection limits,
and while Redis is down the operations that cannot reach the other processes say so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.backends import IS_POSTGRES
from tests.documents import APPLY, SYNC, YClient, create_document
from tests.gql import GQL, create_key, end_user_token
from tests.gqlws import GraphQLWSClient, graphql_ws
from tests.processes import private_redis, processes
from tests.realtime import next_of, run, setup_room
from tests.test_cursors import MOVE
from tests.test_room_events import BROADCAST, EVENTS


async def _pipeline(ws: GraphQLWSClient, document: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every operation at once; each one's errors (empty when it succeeded), in order."""
    ops = [await ws.subscribe(document, variables) for variables in calls]
    outcomes: dict[str, list[dict[str, Any]]] = {}
    while len(outcomes) < len(ops):
        message = await ws.receive(timeout=10)
        op = message.get("id")
        if op in ops and op not in outcomes and message["type"] in ("next", "error"):
            payload = message["payload"]
            outcomes[op] = payload if message["type"] == "error" else payload.get("errors") or []
    return [outcomes[op] for op in ops]


def _codes(outcomes: list[list[dict[str, Any]]]) -> set[str]:
    return {error["extensions"]["code"] for errors in outcomes for error in errors}


async def test_an_api_keys_rate_limit_counts_operations_on_its_sockets(
    live_server_with, session_factory
) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_broadcasts_per_s=10_000.0)  # only the key's limit applies
    room = await setup_room(server, session_factory)
    limited, _ = await create_key(room.dev, room.org_id, "PUBLISHABLE", rateLimit=100)
    token = await end_user_token(room.backend, "eve", [{"room": room.room_id, "access": ["presence"]}])
    async with graphql_ws(server.ws_url, {"apiKey": limited, "token": token}) as ws:  # the 1st request
        calls = [{"room": room.room_id, "type": "ping", "payload": {"n": i}} for i in range(150)]
        outcomes = await _pipeline(ws, BROADCAST, calls)
        allowed = sum(1 for errors in outcomes if not errors)
        assert 90 <= allowed <= 99, allowed  # (a sliding window: 99 unless a minute just turned)
        assert _codes(outcomes) == {"RATE_LIMITED"}
        refusal = next(errors[0] for errors in outcomes if errors)
        assert refusal["extensions"]["retryAfter"] >= 1 and "API key" in refusal["message"]
        # Cursor moves are a stream, not requests: the key's budget does not carry them.
        assert (await run(ws, MOVE, room=room.room_id, x=1.0, y=1.0))["data"]["moveCursor"] is True
    async with httpx.AsyncClient(base_url=server.url) as http:
        over_http = await GQL(http).with_headers(**{"x-api-key": limited}).raw("{ viewer { kind } }")
        assert over_http["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_the_address_rate_limit_counts_operations_on_a_socket(
    live_server_with, session_factory
) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ip_rate_limit="40/minute")
    room = await setup_room(server, session_factory)
    async with room.client("eve") as ws:
        outcomes = await _pipeline(ws, "{ health { ok } }", [{} for _ in range(60)])
    allowed = sum(1 for errors in outcomes if not errors)
    assert 0 < allowed < 40
    assert _codes(outcomes) == {"RATE_LIMITED"}
    assert any("address" in errors[0]["message"] for errors in outcomes if errors)


async def test_moves_and_broadcasts_have_per_connection_limits(live_server_with, session_factory) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_moves_per_s=5.0, ws_broadcasts_per_s=5.0)  # bursts of 10
    room = await setup_room(server, session_factory)
    async with room.client("flood") as flood, room.client("calm") as calm, room.client("watch") as watch:
        events = await watch.subscribe(EVENTS, {"room": room.room_id})
        moves = await _pipeline(
            flood, MOVE, [{"room": room.room_id, "x": float(i), "y": 0.0} for i in range(60)]
        )
        allowed = sum(1 for errors in moves if not errors)
        assert 10 <= allowed < 60
        assert _codes(moves) == {"RATE_LIMITED"}
        refusal = next(errors[0] for errors in moves if errors)
        assert refusal["extensions"]["limit"] == "moves:connection"
        assert 0 < refusal["extensions"]["retryAfter"] <= 1
        # Another connection has its own budget.
        assert (await run(calm, MOVE, room=room.room_id, x=1.0, y=1.0))["data"]["moveCursor"] is True

        calls = [{"room": room.room_id, "type": "flood", "payload": {"n": i}} for i in range(60)]
        broadcasts = await _pipeline(flood, BROADCAST, calls)
        sent = [i for i, errors in enumerate(broadcasts) if not errors]
        assert 10 <= len(sent) < 60 and _codes(broadcasts) == {"RATE_LIMITED"}
        # The room got exactly the events that were accepted, in order.
        received = [(await next_of(watch, events))["roomEvents"]["payload"]["n"] for _ in sent]
        assert received == sent


@pytest.mark.skipif(not IS_POSTGRES, reason="needs Redis to stop and start")
async def test_while_redis_is_down_moves_say_so_and_broadcasts_are_refused(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    async with private_redis() as redis:
        with processes(settings, redis.url, tmp_path, 1) as (server,):
            room = await setup_room(server, session_factory)
            async with room.client("eve") as ws:
                assert (await run(ws, MOVE, room=room.room_id, x=1.0, y=1.0))["data"]["moveCursor"] is True
                redis.stop()
                answer: dict[str, Any] = {}
                for _ in range(100):  # until the process noticed (its pub/sub connection drops)
                    answer = await run(ws, MOVE, room=room.room_id, x=2.0, y=2.0)
                    if answer["data"]["moveCursor"] is False:
                        break
                    await asyncio.sleep(0.1)
                assert answer["data"]["moveCursor"] is False
                refused = await run(ws, BROADCAST, room=room.room_id, type="ping", payload={})
                assert refused["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
                await redis.start()
                for _ in range(100):
                    answer = await run(ws, MOVE, room=room.room_id, x=3.0, y=3.0)
                    if answer["data"]["moveCursor"] is True:
                        break
                    await asyncio.sleep(0.1)
                assert answer["data"]["moveCursor"] is True
                assert not (await run(ws, BROADCAST, room=room.room_id, type="ping", payload={})).get(
                    "errors"
                )


async def test_document_updates_have_a_per_connection_limit(live_server_with, session_factory) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_document_updates_per_s=5.0)  # a burst of 10
    room = await setup_room(server, session_factory)
    document_id = await create_document(room)
    writer = YClient()
    async with room.client("flood") as flood:
        calls = [{"id": document_id, "update": writer.append(f"<{i}>")} for i in range(40)]
        outcomes = await _pipeline(flood, APPLY, calls)
    allowed = [i for i, errors in enumerate(outcomes) if not errors]
    assert 10 <= len(allowed) < 40 and _codes(outcomes) == {"RATE_LIMITED"}
    assert next(e[0] for e in outcomes if e)["extensions"]["limit"] == "document updates:connection"
    # Nothing refused was stored: the document holds exactly what was acknowledged.
    stored = (await room.backend.data(SYNC, id=document_id))["documentSync"]
    assert stored["seq"] == len(allowed)
