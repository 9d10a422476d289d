"""Abuse limits: per-key and per-IP rate limits, query depth/tokens/aliases, request size."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from app.main import create_app
from app.settings import Settings
from tests.conftest import LiveServer
from tests.gql import GQL, create_key, create_org, sign_up


async def test_an_api_key_over_its_rate_limit_gets_rate_limited(anon: GQL) -> None:
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    secret, _ = await create_key(dev, org_id, "SECRET", rateLimit=5)
    backend = anon.bearer(secret)
    for _ in range(5):
        assert await backend.data("{ health { ok } }")
    response = await anon.http.post(
        "/graphql", json={"query": "{ health { ok } }"}, headers={"authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 429
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    assert response.headers["retry-after"] == str(error["extensions"]["retryAfter"])
    # Another key of the same organization has its own budget.
    other, _ = await create_key(dev, org_id, "SECRET", rateLimit=5)
    assert await anon.bearer(other).data("{ health { ok } }")


async def test_per_ip_limit_and_query_limits(settings: Settings) -> None:
    tight = settings.model_copy(
        update={
            "ip_rate_limit": "8/minute",
            "max_query_depth": 4,
            "max_query_aliases": 3,
            "max_query_tokens": 80,
            "max_request_bytes": 2_000,
            "redis_namespace": settings.redis_namespace + "-ip",
        }
    )
    app = create_app(tight)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            gql = GQL(http)
            deep = await gql.error(
                '{ rooms(organizationId: "00000000-0000-0000-0000-000000000000") { edges { node {'
                " organization { rooms { edges { node { id } } } } } } } }"
            )
            assert deep["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "depth" in deep["message"]
            aliases = await gql.error(
                "{ a: health { ok } b: health { ok } c: health { ok } d: health { ok } }"
            )
            assert aliases["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            wordy = await gql.error("{ health { " + "ok " * 100 + "} }")
            assert wordy["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and "tokens" in wordy["message"]
            too_big = await http.post("/graphql", json={"query": "{ health { ok } }", "pad": "x" * 3000})
            assert too_big.status_code == 413
            assert too_big.json()["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
            statuses = [
                (await http.post("/graphql", json={"query": "{ health { ok } }"})).status_code
                for _ in range(8)
            ]
            assert statuses[-1] == 429 and statuses[0] == 200
            limited = await gql.error("{ health { ok } }")
            assert limited["extensions"]["code"] == "RATE_LIMITED"


async def test_websocket_connections_count_against_the_limits(settings: Settings) -> None:
    tight = settings.model_copy(
        update={"ip_rate_limit": "3/minute", "redis_namespace": settings.redis_namespace + "-ws"}
    )
    server = LiveServer(create_app(tight))
    await server.start()
    try:
        closes = [await _rejected_or_acked(server.ws_url) for _ in range(4)]
    finally:
        await server.stop()
    assert closes[:3] == ["ack", "ack", "ack"]
    code, reason = closes[3]  # type: ignore[misc]
    assert code == 4429 and "too many requests" in reason


async def _rejected_or_acked(url: str) -> str | tuple[int, str]:
    async with connect(url, subprotocols=["graphql-transport-ws"]) as connection:  # type: ignore[list-item]
        await connection.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            message = json.loads(await asyncio.wait_for(connection.recv(), 5))
        except ConnectionClosedError:
            return connection.close_code or 0, connection.close_reason or ""
        return "ack" if message["type"] == "connection_ack" else str(message)
