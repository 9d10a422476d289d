"""GraphQL subscriptions over a real WebSocket with graphql-transport-ws, and only that protocol."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.conftest import LiveServer
from tests.gqlws import graphql_ws


async def test_health_subscription_streams_until_completed(live_server: LiveServer) -> None:
    async with graphql_ws(live_server.ws_url) as ws:
        op = await ws.subscribe("subscription { health(intervalMs: 100) { ok mode } }")
        for _ in range(3):
            message = await ws.receive()
            assert message["type"] == "next" and message["id"] == op
            assert message["payload"]["data"]["health"]["ok"] is True
        await ws.complete(op)
        # A ping still answers after the subscription is gone: the connection stays healthy.
        await ws.send({"type": "ping"})
        while (message := await ws.receive())["type"] == "next":
            pass
        assert message["type"] == "pong"


async def test_subscription_errors_are_coded(live_server: LiveServer) -> None:
    async with graphql_ws(live_server.ws_url) as ws:
        op = await ws.subscribe("subscription { health(intervalMs: 5) { ok } }")
        message = await ws.receive()
        assert message["id"] == op
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "VALIDATION_ERROR"
        assert errors[0]["extensions"]["field"] == "intervalMs"


async def test_queries_also_run_over_the_socket(live_server: LiveServer) -> None:
    async with graphql_ws(live_server.ws_url) as ws:
        op = await ws.subscribe("{ health { ok } }")
        assert (await ws.receive())["payload"] == {"data": {"health": {"ok": True}}}
        assert (await ws.receive()) == {"id": op, "type": "complete"}


async def test_only_graphql_transport_ws_is_spoken(live_server: LiveServer) -> None:
    # The legacy subscriptions-transport-ws protocol ("graphql-ws") is refused with 4406.
    async with connect(live_server.ws_url, subprotocols=["graphql-ws"]) as connection:  # type: ignore[list-item]
        assert connection.subprotocol is None
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(connection.recv(), 5)
        assert connection.close_code == 4406


async def test_a_connection_that_stops_answering_pings_is_closed(live_server_with) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_keepalive_s=0.5)
    async with graphql_ws(server.ws_url) as ws:
        pings = 0
        while pings < 2:  # a live client answers (graphql_ws does, in receive)
            await ws.send({"type": "ping"})
            assert (await ws.receive(timeout=3))["type"] == "pong"
            pings += 1
        ws.answer_pings = False  # silent now: three intervals later the server hangs up
        with pytest.raises(ConnectionClosedError):
            while True:
                await ws.connection.recv()
        assert ws.connection.close_code == 4000


async def test_protocol_violations_close_with_their_codes(live_server: LiveServer) -> None:
    async with graphql_ws(live_server.ws_url) as ws:
        await ws.send(
            {"id": "1", "type": "subscribe", "payload": {"query": "subscription { health { ok } }"}}
        )
        await ws.send(
            {"id": "1", "type": "subscribe", "payload": {"query": "subscription { health { ok } }"}}
        )
        with pytest.raises(ConnectionClosedError):
            while True:
                await ws.connection.recv()
        assert ws.connection.close_code == 4409  # the same id twice
    for bad in ([1, 2], {"type": "subscribe", "id": "1", "payload": "not an object"}):
        async with graphql_ws(live_server.ws_url) as ws:
            await ws.send(bad)  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosedError):
                while True:
                    await ws.connection.recv()
            assert ws.connection.close_code == 4400
